import { InProcessStore } from '@tollgate/core/store'
import { describeStoreConformance } from '../src/index.js'

// The store a limiter gets when given none: the memory store's base, run on its own.
describeStoreConformance(
  'in-process (the default store)',
  (clock) => new InProcessStore({ maxKeys: 100_000, clock: clock.now }),
)
