export { createDocs, type DocsHandler } from './handler.ts'
export {
  buildOpenApi,
  GATEWAY_VERSION,
  type JsonValue,
  type MediaTypeObject,
  type OpenApiDocument,
  type OpenApiMethod,
  type OperationObject,
  type ParameterObject,
  type PathItemObject,
  type RegexRouteInfo,
  type RequestBodyObject,
  type ResponseObject,
  type SchemaObject,
  type SecurityRequirement,
  type SecuritySchemeObject,
} from './openapi.ts'
