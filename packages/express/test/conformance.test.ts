import { describeAdapterConformance } from '@tollgate/testkit'
import { expressApp } from './app.js'

describeAdapterConformance('express', expressApp)
