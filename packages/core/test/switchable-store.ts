import {
  type DecideRequest,
  ErrorCode,
  type FleetMembership,
  InProcessStore,
  type Store,
  TollgateError,
} from './internals.js'

/**
 * A real in-process store behind a switch, standing in for a shared store that can fail: a fault injector,
 * not a mock. Besides its name, the options add the optional parts of the contract a test needs (joinFleet, pace).
 */
export function switchableStore(
  clock: () => number,
  {
    name = 'switchable',
    ...extra
  }: { name?: string; joinFleet?: () => FleetMembership; pace?: () => Promise<void> } = {},
) {
  const inner = new InProcessStore({ maxKeys: 1000, clock })
  let down = false
  let calls = 0
  const store: Store = {
    name,
    registry: inner.registry,
    reset: (namespace, level, key) => inner.reset(namespace, level, key),
    refund: (request) => inner.refund(request),
    decide: async (request: DecideRequest) => {
      calls++
      if (down) throw new TollgateError(ErrorCode.StoreUnavailable, 'store is down')
      return inner.decide(request)
    },
    ...extra,
  }
  return {
    store,
    setDown: (value: boolean) => {
      down = value
    },
    calls: () => calls,
  }
}
