import type { GatewayConfig, PolicyInstanceConfig, RouteConfig } from '../config/types.ts'

/** A JSON value, as the document holds only those (it is served with `JSON.stringify`). */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue }

/** A JSON Schema (OpenAPI 3.1 uses JSON Schema 2020-12). */
export type SchemaObject = { [keyword: string]: JsonValue }

/** OpenAPI Parameter Object. */
export interface ParameterObject {
  name: string
  in: 'path' | 'query' | 'header' | 'cookie'
  required?: boolean
  description?: string
  schema: SchemaObject
}

/** OpenAPI Media Type Object. */
export interface MediaTypeObject {
  schema?: SchemaObject
  example?: JsonValue
}

/** OpenAPI Request Body Object. */
export interface RequestBodyObject {
  description?: string
  required?: boolean
  content: Record<string, MediaTypeObject>
}

/** OpenAPI Response Object. */
export interface ResponseObject {
  description: string
  headers?: Record<string, { description?: string; schema: SchemaObject }>
  content?: Record<string, MediaTypeObject>
}

/** One way to authenticate: scheme names (keys of `components.securitySchemes`) that must all hold. */
export type SecurityRequirement = Record<string, string[]>

/** OpenAPI Operation Object, plus the route it comes from. */
export interface OperationObject {
  operationId: string
  summary?: string
  description?: string
  tags?: string[]
  parameters?: ParameterObject[]
  requestBody?: RequestBodyObject
  responses: Record<string, ResponseObject>
  /** Alternatives: any one requirement suffices. Absent: no authentication. */
  security?: SecurityRequirement[]
  /** The configured route this operation reaches. */
  'x-switchboard-route'?: string
}

/** The HTTP methods an OpenAPI Path Item can describe. */
export type OpenApiMethod = 'get' | 'put' | 'post' | 'delete' | 'options' | 'head' | 'patch' | 'trace'

/** OpenAPI Path Item Object. */
export type PathItemObject = { [M in OpenApiMethod]?: OperationObject }

/** OpenAPI Security Scheme Object (the kinds the gateway's auth policies use). */
export type SecuritySchemeObject =
  | { type: 'http'; scheme: 'bearer' | 'basic'; bearerFormat?: string; description?: string }
  | { type: 'apiKey'; in: 'header' | 'query' | 'cookie'; name: string; description?: string }

/** A `pathRegex` route, which OpenAPI paths cannot express. */
export interface RegexRouteInfo {
  route: string
  pattern: string
  methods: string[]
  security?: SecurityRequirement[]
}

/** The OpenAPI 3.1 document {@link buildOpenApi} returns: plain JSON data. */
export interface OpenApiDocument {
  openapi: '3.1.0'
  info: { title: string; version: string; description?: string }
  tags: Array<{ name: string; description?: string }>
  paths: Record<string, PathItemObject>
  components: {
    schemas: Record<string, SchemaObject>
    securitySchemes: Record<string, SecuritySchemeObject>
  }
  /** Routes matched by `pathRegex`, listed here instead of under `paths`. */
  'x-switchboard-regex-routes'?: RegexRouteInfo[]
}

/** `info.version` of the document: the gateway package's version. */
export const GATEWAY_VERSION = '0.1.0'

/** Methods a route without `match.methods` is documented with. */
const COMMON_METHODS: readonly OpenApiMethod[] = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options']
const OPENAPI_METHODS = new Set<string>(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])
const WITH_BODY = new Set<string>(['post', 'put', 'patch'])
/** Policy types that authenticate, and so become security requirements. */
const AUTH_TYPES = new Set(['api-key', 'jwt', 'basic'])
/** Answers some built-in policy types give on their own, documented on the routes that use them. */
const POLICY_STATUSES = new Map<string, ReadonlyArray<readonly [status: string, description: string]>>([
  ['rate-limit', [['429', 'Rate limit exceeded (`rate-limit` policy)']]],
  ['token-budget', [['429', 'Token budget used up (`token-budget` policy)'], ['413', "The request's worst case exceeds a token budget (`token-budget` policy)"]]],
  ['ip-filter', [['403', 'Client address not allowed (`ip-filter` policy)']]],
  ['body-limit', [['413', 'Request body too large (`body-limit` policy)']]],
  ['maintenance', [['503', 'Down for maintenance (`maintenance` policy)']]],
])

/** Methods a `/proxy` envelope may name. */
const ENVELOPE_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
const QUERY_VALUE: SchemaObject = { type: ['string', 'number', 'boolean'] }
const ERROR_REF: SchemaObject = { $ref: '#/components/schemas/Error' }
const JSON_TYPE = 'application/json'

/**
 * Describes the gateway as an OpenAPI 3.1.0 document: its health endpoint, the `/proxy` envelope
 * (with `clients:`), the admin API (with `admin:`) and every configured route, with security
 * requirements derived from the auth policies that guard it. Pure and JSON-serialisable; holds
 * names only, never a key, hash, token, secret or upstream URL.
 * @example
 * const doc = buildOpenApi(parseConfig({ upstreams: { a: { targets: ['http://127.0.0.1:3000'] } }, routes: [{ name: 'user', match: { path: '/users/:id' }, upstream: 'a' }] }))
 * doc.paths['/users/{id}'].get?.parameters?.[0].name // 'id'
 */
export function buildOpenApi(config: GatewayConfig): OpenApiDocument {
  const doc: OpenApiDocument = {
    openapi: '3.1.0',
    info: {
      title: config.docs?.title ?? 'Switchboard gateway',
      version: GATEWAY_VERSION,
      description: 'The endpoints this Switchboard gateway answers itself and the routes it forwards to its upstreams.',
    },
    tags: [{ name: 'gateway', description: 'Endpoints the gateway answers itself' }],
    paths: Object.create(null) as Record<string, PathItemObject>,
    components: { schemas: baseSchemas(), securitySchemes: Object.create(null) as Record<string, SecuritySchemeObject> },
  }
  const paths = new PathTable(doc.paths)
  addHealth(paths, config)
  if (config.models) addModels(paths, config.models.path)
  if (config.proxy) addProxy(doc, paths, config)
  if (config.admin) addAdmin(doc, paths, config)
  addRoutes(doc, paths, config)
  return doc
}

function baseSchemas(): Record<string, SchemaObject> {
  return {
    Error: {
      type: 'object',
      description: 'A failure the gateway answers itself.',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: {
            code: { type: 'string', description: 'Stable code to switch on', examples: ['ERR_NOT_FOUND'] },
            message: { type: 'string', description: 'Short human-readable message' },
          },
          additionalProperties: true,
        },
      },
    },
    HealthStatus: {
      type: 'object',
      required: ['status', 'upstreams'],
      properties: {
        status: { type: 'string', enum: ['ok', 'degraded', 'saturated', 'draining'] },
        upstreams: {
          type: 'object',
          description: 'Per upstream name',
          additionalProperties: {
            type: 'object',
            required: ['healthy', 'total', 'saturated'],
            properties: {
              healthy: { type: 'integer', minimum: 0, description: 'Endpoints that may be picked' },
              total: { type: 'integer', minimum: 0, description: 'Endpoints configured' },
              saturated: { type: 'integer', minimum: 0, description: 'Endpoints whose connection pool is full' },
            },
          },
        },
      },
    },
  }
}

/** Path keys in insertion order; templated paths of the same shape share the first key. */
class PathTable {
  readonly #paths: Record<string, PathItemObject>
  readonly #byShape = new Map<string, string>()

  constructor(paths: Record<string, PathItemObject>) {
    this.#paths = paths
  }

  /** The key a templated path is stored under (an earlier one of the same shape, else itself). */
  key(path: string): string {
    const shape = path.replace(/\{[^}]*\}/g, '{}')
    const known = this.#byShape.get(shape)
    if (known !== undefined) return known
    this.#byShape.set(shape, path)
    return path
  }

  /** Adds an operation unless the method is taken (the first claim wins, as in the router). */
  add(key: string, method: OpenApiMethod, op: OperationObject): boolean {
    const item = (this.#paths[key] ??= {})
    if (item[method] !== undefined) return false
    item[method] = op
    return true
  }
}

function addHealth(paths: PathTable, config: GatewayConfig): void {
  const key = paths.key(config.server.healthPath)
  const responses: Record<string, ResponseObject> = {
    '200': { description: 'Every upstream has a healthy endpoint', content: { [JSON_TYPE]: { schema: { $ref: '#/components/schemas/HealthStatus' } } } },
    '503': { description: 'An upstream has no healthy endpoint, or the gateway is draining', content: { [JSON_TYPE]: { schema: { $ref: '#/components/schemas/HealthStatus' } } } },
  }
  paths.add(key, 'get', { operationId: 'health', summary: 'Gateway health', tags: ['gateway'], responses })
  paths.add(key, 'head', { operationId: 'health.head', summary: 'Gateway health (status only)', tags: ['gateway'], responses: { '200': { description: responses['200'].description }, '503': { description: responses['503'].description } } })
}

/** `models:`: the gateway's own aggregated model list (route policies of a route claiming the path still apply). */
function addModels(paths: PathTable, path: string): void {
  const schema = {
    type: 'object',
    required: ['object', 'data'],
    properties: {
      object: { const: 'list' },
      data: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id', 'object', 'created', 'owned_by', 'upstreams'],
          properties: {
            id: { type: 'string' },
            object: { const: 'model' },
            created: { type: 'integer', description: 'Unix seconds when this gateway first listed the model' },
            owned_by: { type: 'string', description: 'The first upstream (in `models.upstreams` order) serving it' },
            upstreams: { type: 'array', items: { type: 'string' }, description: 'Every listed upstream with a healthy endpoint serving it' },
          },
        },
      },
    },
  }
  const responses = { '200': { description: 'Models served by the healthy endpoints of the listed upstreams, sorted by id', content: { [JSON_TYPE]: { schema } } } }
  paths.add(paths.key(path), 'get', { operationId: 'models', summary: 'Aggregated model list (OpenAI format)', tags: ['gateway'], responses })
}

function addProxy(doc: OpenApiDocument, paths: PathTable, config: GatewayConfig): void {
  const proxy = config.proxy!
  doc.tags.push({ name: 'proxy', description: 'The request envelope for `clients:`' })
  doc.components.securitySchemes.clientKey = { type: 'http', scheme: 'bearer', description: "The client's key (`clients:`)" }
  doc.components.schemas.ProxyEnvelope = {
    type: 'object',
    required: ['method', 'path'],
    additionalProperties: false,
    properties: {
      method: { type: 'string', enum: ENVELOPE_METHODS, description: 'HTTP method sent to the target (case-insensitive); must be one the client may use', examples: ['POST'] },
      path: { type: 'string', pattern: '^/', maxLength: 8192, description: "Path on the client's target, optionally with a query; must be one the client may call", examples: ['/chat/completions'] },
      body: { description: 'Request body: a string is sent as is, any other JSON value as JSON. Not with GET or OPTIONS.' },
      headers: {
        type: 'object',
        description: 'Extra request headers for the target (not framing, credential, forwarding or identity headers)',
        additionalProperties: { type: 'string' },
      },
      query: {
        type: 'object',
        description: 'Query parameters appended to the path',
        additionalProperties: { anyOf: [QUERY_VALUE, { type: 'array', items: QUERY_VALUE }] },
      },
    },
  }
  const example = envelopeExample(config)
  const passthrough = proxy.passthrough
    ? ' A client may also call its target\'s paths on the gateway directly with the same key (passthrough), for requests no route claims.'
    : ''
  paths.add(paths.key(proxy.path), 'post', {
    operationId: 'proxy',
    summary: "Send a request to the client's target",
    description: `The gateway checks the client's key and what it may call, adds the target's secret headers and streams the target's response back.${passthrough}`,
    tags: ['proxy'],
    security: [{ clientKey: [] }],
    requestBody: { required: true, content: { [JSON_TYPE]: { schema: { $ref: '#/components/schemas/ProxyEnvelope' }, example } } },
    responses: {
      '200': { description: "The target's response, streamed as it arrives (its status, headers and body)", content: { '*/*': {} } },
      '400': errorResponse('Malformed envelope'),
      '401': errorResponse('Missing or unknown client key'),
      '403': errorResponse('Method or path not allowed for this client'),
      '413': errorResponse(`Envelope larger than ${proxy.maxBodyBytes} bytes`),
      ...policyResponses(config, proxy.policies ?? []),
      '502': errorResponse('Target unreachable or its answer garbled'),
      '504': errorResponse("Target did not answer within the client's timeout"),
    },
  })
}

/** An example envelope from the first client with an exact allowed path (paths and methods are not secrets). */
function envelopeExample(config: GatewayConfig): JsonValue {
  for (const client of Object.values(config.clients ?? {})) {
    const path = client.allowedPaths.find((p) => !/[*?[\]{}]/.test(p))
    if (path !== undefined) return { method: client.allowedMethods[0] ?? 'GET', path }
  }
  return { method: 'GET', path: '/' }
}

function addAdmin(doc: OpenApiDocument, paths: PathTable, config: GatewayConfig): void {
  const admin = config.admin!
  doc.tags.push({ name: 'admin', description: admin.token === undefined ? 'Admin API (loopback clients only: no admin.token is set)' : 'Admin API (bearer admin token)' })
  let security: SecurityRequirement[] | undefined
  if (admin.token !== undefined) {
    doc.components.securitySchemes.adminToken = { type: 'http', scheme: 'bearer', description: 'The admin token (`admin.token`)' }
    security = [{ adminToken: [] }]
  }
  const refused: Record<string, ResponseObject> = admin.token === undefined ? { '403': errorResponse('Not a loopback client') } : { '401': errorResponse('Missing or wrong admin token') }
  const object = (property: string, description: string): ResponseObject => ({
    description,
    content: { [JSON_TYPE]: { schema: { type: 'object', required: [property], properties: { [property]: {} } } } },
  })
  const prefixBody: RequestBodyObject = {
    required: false,
    content: { [JSON_TYPE]: { schema: { type: 'object', properties: { prefix: { type: 'string', description: 'Only keys starting with this; empty: all' } } } } },
  }
  const prefixQuery: ParameterObject = { name: 'prefix', in: 'query', required: false, description: 'Same as the body field; wins over it', schema: { type: 'string' } }
  const ops: Array<[OpenApiMethod, string, Omit<OperationObject, 'tags' | 'security'>]> = [
    ['get', '/upstreams', { operationId: 'admin.upstreams', summary: 'Upstreams and their endpoints', responses: { '200': object('upstreams', 'Upstreams by name') } }],
    ['get', '/routes', { operationId: 'admin.routes', summary: 'Routes in matching order', responses: { '200': object('routes', 'Routes with their policies and upstream') } }],
    ['get', '/config', { operationId: 'admin.config', summary: 'The config in force, secrets redacted', responses: { '200': object('config', 'The config') } }],
    ['get', '/cache', { operationId: 'admin.cache', summary: 'Response cache counters', responses: { '200': object('cache', 'Counters') } }],
    ['get', '/breakers', { operationId: 'admin.breakers', summary: 'Circuit breakers and retry budgets', responses: { '200': object('breakers', 'Per upstream') } }],
    ['get', '/maintenance', { operationId: 'admin.maintenance', summary: 'Maintenance switches', responses: { '200': object('maintenance', 'Every maintenance policy and whether it answers 503 now') } }],
    [
      'post',
      '/maintenance',
      {
        operationId: 'admin.setMaintenance',
        summary: 'Turn maintenance on, off, or back to config',
        requestBody: {
          required: true,
          content: {
            [JSON_TYPE]: {
              schema: { type: 'object', required: ['on'], properties: { on: { type: ['boolean', 'null'] }, policy: { type: 'string', description: 'One maintenance policy; absent: all' } } },
            },
          },
        },
        responses: { '200': object('changed', 'The names changed and the switches now'), '400': errorResponse('Malformed body'), '404': errorResponse('No such maintenance policy') },
      },
    ],
    [
      'post',
      '/cache/purge',
      { operationId: 'admin.purgeCache', summary: 'Purge cached responses', parameters: [prefixQuery], requestBody: prefixBody, responses: { '200': object('purged', 'Entries purged'), '400': errorResponse('Malformed body') } },
    ],
    [
      'post',
      '/reload',
      {
        operationId: 'admin.reload',
        summary: 'Reload the config from its source',
        responses: {
          '200': object('reloaded', 'The new config is in force'),
          '422': { description: 'Refused; the previous config keeps serving', content: { [JSON_TYPE]: { schema: { type: 'object', properties: { reloaded: { const: false }, error: {} } } } } },
          '501': errorResponse('No config source to reload from'),
        },
      },
    ],
  ]
  if (config.discovery) {
    ops.push([
      'post',
      '/routes/forget',
      { operationId: 'admin.forgetRoutes', summary: 'Forget remembered (discovered) routes', parameters: [prefixQuery], requestBody: prefixBody, responses: { '200': object('forgotten', 'Routes forgotten'), '400': errorResponse('Malformed body') } },
    ])
  }
  for (const [method, sub, op] of ops) {
    paths.add(paths.key(`${admin.path}${sub}`), method, { ...op, tags: ['admin'], ...(security ? { security } : {}), responses: { ...op.responses, ...refused } })
  }
}

function addRoutes(doc: OpenApiDocument, paths: PathTable, config: GatewayConfig): void {
  const schemes = new SchemeTable(doc.components.securitySchemes)
  const regexRoutes: RegexRouteInfo[] = []
  const publicPaths = config.server.publicPaths ?? []
  if (publicPaths.length > 0) doc.info.description += ` No credentials are needed for ${publicPaths.map((p) => `\`${p}\``).join(', ')}.`
  // Same shape and method: the higher priority wins, then the earlier route (the matcher's order).
  const ordered = config.routes.map((route, i) => ({ route, i })).sort((a, b) => (b.route.priority ?? 0) - (a.route.priority ?? 0) || a.i - b.i)
  for (const { route } of ordered) {
    const policies = [...new Set([...config.server.policies, ...route.policies])]
      .map((name) => (Object.hasOwn(config.policies, name) ? config.policies[name] : undefined))
      .filter((p): p is PolicyInstanceConfig => p !== undefined)
    // `public: true` (or a pattern wholly under server.publicPaths) skips authentication only; the route's other policies still run.
    const exempt = route.public === true || (route.match.path !== undefined && underPublicPaths(route.match.path, publicPaths))
    const security = exempt ? [] : dedupe(policies.filter((p) => AUTH_TYPES.has(p.use)).flatMap((p) => schemes.alternatives(p)))
    const declared = route.match.methods?.map((m) => m.toLowerCase())
    if (route.match.pathRegex !== undefined) {
      regexRoutes.push({
        route: route.name,
        pattern: route.match.pathRegex,
        methods: declared?.map((m) => m.toUpperCase()) ?? COMMON_METHODS.map((m) => m.toUpperCase()),
        ...(security.length > 0 ? { security } : {}),
      })
      continue
    }
    const template = toTemplate(route.match.path ?? '/*')
    const key = paths.key(template.path)
    const methods = (declared ?? COMMON_METHODS).filter((m): m is OpenApiMethod => OPENAPI_METHODS.has(m))
    const parameters = [...pathParameters(key, template.wildcard), ...conditionParameters(route)]
    const responses = routeResponses(security.length > 0, policies)
    let added = 0
    for (const method of methods) {
      const op: OperationObject = {
        operationId: `${route.name}.${method}`,
        summary: `${method.toUpperCase()} via route ${route.name}`,
        description: routeDescription(route, template.wildcard !== undefined),
        tags: [route.name],
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(WITH_BODY.has(method) ? { requestBody: { required: false, content: { [JSON_TYPE]: { schema: {} }, '*/*': { schema: {} } } } } : {}),
        responses,
        ...(security.length > 0 ? { security } : {}),
        'x-switchboard-route': route.name,
      }
      if (paths.add(key, method, op)) added++
    }
    if (added > 0 && !doc.tags.some((t) => t.name === route.name)) doc.tags.push({ name: route.name, description: `Route ${route.name} → upstream ${route.upstream}` })
  }
  if (regexRoutes.length > 0) doc['x-switchboard-regex-routes'] = regexRoutes
}

/** Security schemes by policy name; the scheme objects hold header, query and cookie names only. */
class SchemeTable {
  readonly #schemes: Record<string, SecuritySchemeObject>

  constructor(schemes: Record<string, SecuritySchemeObject>) {
    this.#schemes = schemes
  }

  /** The ways one auth policy instance accepts a credential, each as a requirement. */
  alternatives(policy: PolicyInstanceConfig): SecurityRequirement[] {
    const options = isRecord(policy.options) ? policy.options : {}
    const label = `\`${policy.use}\` policy ${policy.name}`
    const out: SecurityRequirement[] = []
    const add = (suffix: string, scheme: SecuritySchemeObject): void => {
      out.push({ [this.#register(`${policy.name}${suffix}`, scheme)]: [] })
    }
    if (policy.use === 'basic') {
      add('', { type: 'http', scheme: 'basic', description: label })
      return out
    }
    const header = (stringOption(options, 'header') ?? 'authorization').toLowerCase()
    if (header === 'authorization') add('', { type: 'http', scheme: 'bearer', ...(policy.use === 'jwt' ? { bearerFormat: 'JWT' } : {}), description: label })
    else add('', { type: 'apiKey', in: 'header', name: header, description: label })
    const query = stringOption(options, 'query')
    if (query !== undefined) add('.query', { type: 'apiKey', in: 'query', name: query, description: `${label} (query parameter)` })
    const cookie = policy.use === 'jwt' ? stringOption(options, 'cookie') : undefined
    if (cookie !== undefined) add('.cookie', { type: 'apiKey', in: 'cookie', name: cookie, description: `${label} (cookie)` })
    return out
  }

  /** Registers a scheme under `name` (or `name-2`… when another scheme took it); the name used. */
  #register(name: string, scheme: SecuritySchemeObject): string {
    const same = (a: SecuritySchemeObject): boolean => JSON.stringify(a) === JSON.stringify(scheme)
    let candidate = name
    for (let n = 2; this.#schemes[candidate] !== undefined && !same(this.#schemes[candidate]); n++) candidate = `${name}-${n}`
    this.#schemes[candidate] = scheme
    return candidate
  }
}

/** True when every path the pattern matches is exempt from authentication (`server.publicPaths`: exact, or `X/*` for X's subtree). */
function underPublicPaths(pattern: string, publicPaths: readonly string[]): boolean {
  return publicPaths.some((p) => {
    if (!p.endsWith('/*')) return p === pattern && !/[:*]/.test(pattern)
    const root = p.slice(0, -2)
    return pattern === root || pattern.startsWith(`${root}/`)
  })
}

interface Template {
  /** `/users/{id}`, `/files/{path}` */
  readonly path: string
  /** Name of the parameter that stands for the rest of the path, when the pattern ends in a wildcard. */
  readonly wildcard: string | undefined
}

/** `/users/:id` → `/users/{id}`; a trailing `*` → `{path}`, `*rest` → `{rest}`. */
function toTemplate(pattern: string): Template {
  const segments = pattern.split('/').slice(1)
  const names = new Set(segments.filter((s) => s.startsWith(':')).map((s) => s.slice(1)))
  let wildcard: string | undefined
  const out = segments.map((seg, i) => {
    if (seg.startsWith(':')) return `{${seg.slice(1)}}`
    if (i === segments.length - 1 && seg.startsWith('*')) {
      let name = seg === '*' ? 'path' : seg.slice(1)
      for (let n = 2; seg === '*' && names.has(name); n++) name = `path${n}`
      wildcard = name
      return `{${name}}`
    }
    return seg
  })
  return { path: `/${out.join('/')}`, wildcard }
}

/** Path parameters of a stored key (its own names, which may be an earlier route's of the same shape). */
function pathParameters(key: string, wildcard: string | undefined): ParameterObject[] {
  const names = [...key.matchAll(/\{([^}]*)\}/g)].map((m) => m[1])
  return names.map((name, i) => {
    const rest = wildcard !== undefined && i === names.length - 1 && key.endsWith(`{${name}}`)
    return {
      name,
      in: 'path' as const,
      required: true,
      description: rest ? 'The rest of the path (may contain `/`; the route also matches the path without it)' : 'One path segment',
      schema: { type: 'string' },
    }
  })
}

/** Header and query conditions as required parameters: names only, since a value may be a secret. */
function conditionParameters(route: RouteConfig): ParameterObject[] {
  const out: ParameterObject[] = []
  const description = 'The route only matches requests that carry it (with the value it expects)'
  // OpenAPI 3.1 §4.8.12.1: Accept, Content-Type and Authorization header parameters are ignored.
  for (const name of Object.keys(route.match.headers ?? {})) if (!['accept', 'content-type', 'authorization'].includes(name)) out.push({ name, in: 'header', required: true, description, schema: { type: 'string' } })
  for (const name of Object.keys(route.match.query ?? {})) out.push({ name, in: 'query', required: true, description, schema: { type: 'string' } })
  return out
}

/** Statuses the named policies answer on their own (`proxy.policies`), beyond the envelope's. */
function policyResponses(config: GatewayConfig, names: readonly string[]): Record<string, ResponseObject> {
  const out: Record<string, ResponseObject> = {}
  for (const name of names) {
    const use = Object.hasOwn(config.policies, name) ? config.policies[name].use : undefined
    for (const [status, description] of (use === undefined ? undefined : POLICY_STATUSES.get(use)) ?? []) if (!['400', '401', '403', '413'].includes(status)) out[status] ??= errorResponse(description)
  }
  return out
}

function routeResponses(secured: boolean, policies: PolicyInstanceConfig[]): Record<string, ResponseObject> {
  const out: Record<string, ResponseObject> = { default: { description: "The upstream's response, passed through" } }
  if (secured) {
    out['401'] = errorResponse('Missing or invalid credentials')
    out['403'] = errorResponse('Credentials valid but not allowed here')
  }
  for (const p of policies) for (const [status, description] of POLICY_STATUSES.get(p.use) ?? []) out[status] ??= errorResponse(description)
  out['502'] ??= errorResponse('Upstream unreachable or its answer garbled')
  out['503'] ??= errorResponse('No healthy upstream endpoint')
  out['504'] ??= errorResponse('Upstream did not answer in time')
  return out
}

function routeDescription(route: RouteConfig, wildcard: boolean): string {
  const parts = [`Forwarded to upstream \`${route.upstream}\` by route \`${route.name}\`${route.match.path ? ` (pattern \`${route.match.path}\`)` : ''}.`]
  const host = route.match.host
  if (host !== undefined) parts.push(`Only for Host ${(Array.isArray(host) ? host : [host]).map((h) => `\`${h}\``).join(', ')}.`)
  if (route.match.payload !== undefined) parts.push('Only for requests whose JSON body is one the route expects.')
  if (route.match.body !== undefined) parts.push(`Only for JSON bodies whose fields match: ${Object.entries(route.match.body).map(([k, c]) => `\`${k}\` ${c instanceof RegExp ? String(c) : JSON.stringify(c)}`).join(', ')}.`)
  if (wildcard) parts.push('The last parameter stands for the rest of the path.')
  return parts.join(' ')
}

function errorResponse(description: string): ResponseObject {
  return { description, content: { [JSON_TYPE]: { schema: ERROR_REF } } }
}

function dedupe(list: SecurityRequirement[]): SecurityRequirement[] {
  const seen = new Set<string>()
  return list.filter((r) => {
    const k = JSON.stringify(r)
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function stringOption(options: Record<string, unknown>, key: string): string | undefined {
  const value = options[key]
  return typeof value === 'string' && value !== '' ? value : undefined
}
