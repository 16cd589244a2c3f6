export type { Balancer, Endpoint, EndpointStats, RequestInfo } from '@switchboard/core'
export { createEndpoint, EndpointState, type EndpointOptions } from './endpoint.ts'
