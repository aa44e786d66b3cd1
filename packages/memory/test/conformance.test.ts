import { describeStoreConformance } from '@tollgate/testkit'
import { memoryStore } from '../src/index.js'

describeStoreConformance('memory', (clock) => memoryStore({ clock: clock.now }))
