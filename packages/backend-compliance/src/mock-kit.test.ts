// The compliance suite on the kernel selftest mock driver, through its exported kit.
import { runComplianceSuite, selftestMockKit } from './index.js';

runComplianceSuite(selftestMockKit);
