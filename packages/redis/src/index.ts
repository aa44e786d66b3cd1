export type { IoRedisClient, NodeRedisClient, RedisClient } from './client.js'
export { encodePart, type HashTag } from './keys.js'
export { type MigrateOptions, type MigrateReport, migrateRegistry } from './migrate.js'
export { type RedisStore, type RedisStoreOptions, redisStore } from './store.js'
