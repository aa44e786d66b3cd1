// @tollgate/core/http: what adapter authors need (the shared HTTP gate, headers, problem bodies).
export * from '../index.js'
