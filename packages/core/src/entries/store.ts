// @tollgate/core/store: what store authors need (algorithm steps, the in-process store, the Store contract).
export * from '../index.js'
