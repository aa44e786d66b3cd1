export { encodePart, type HashTag } from './keys.js'
export { type RedisStoreOptions, redisStore } from './store.js'
