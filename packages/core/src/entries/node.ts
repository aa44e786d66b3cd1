// @tollgate/core/node: Node-only helpers for adapters (timers, sockets); core's root stays free of them.
export { admit, holdRequest, settleWhenDone } from '../http-hold.js'
