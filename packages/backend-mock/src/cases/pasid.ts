// TEST_F(iommufd_device_pasid, ...) of iommufd.c: PASID attach, replace and detach through the
// selftest commands, PASID-compatible domains and IOPF on a PASID.
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  iommu_hwpt_selftest,
} from '@viommu/uapi';
import { iommufd_device_pasid } from '../fixtures.js';
import { testF, type Scenario } from '../harness.js';
import { assertEq, enc, expectErrno } from '../utils.js';

export const pasidCases: Scenario[] = [
  ...testF(iommufd_device_pasid, 'pasid_attach', (self, variant) => {
    const data = self.put(enc(iommu_hwpt_selftest, { iotlb: IOMMU_TEST_IOTLB_DEFAULT }));
    const dlen = iommu_hwpt_selftest.size;
    const check = (pasid: number, hwptId: number) => assertEq('success', self.pasidCheckHwpt(self.stdev_id, pasid, hwptId) ?? 'success', `PASID ${pasid} attached to ${hwptId}`);
    let pasid = 100;

    // Detaching a PASID that was never attached is not expected, but does not fail.
    self.testCmdPasidDetach(pasid);

    // Two nested hwpts sharing one common parent hwpt
    const parent = self.testCmdHwptAlloc(self.device_id, self.ioas_id, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const nested0 = self.testCmdHwptAllocNested(self.device_id, parent, IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_SELFTEST, data, dlen);
    const nested1 = self.testCmdHwptAllocNested(self.device_id, parent, IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_SELFTEST, data, dlen);

    // Fault related preparation
    const { faultId, faultFd } = self.testIoctlFaultAlloc();
    const iopfHwpt = self.testCmdHwptAllocIopf(self.device_id, parent, faultId, IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_SELFTEST, data, dlen);

    // A regular nested hwpt based on a viommu
    const viommuId = self.testCmdViommuAlloc(self.device_id, parent, IOMMU_VIOMMU_TYPE_SELFTEST, null, 0);
    self.testCmdHwptAllocNested(self.device_id, viommuId, IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_SELFTEST, data, dlen);

    const s2 = self.testCmdHwptAlloc(self.device_id, self.ioas_id, IOMMU_HWPT_ALLOC_PASID);

    // RID on a non-PASID-compatible domain: a PASID attach fails
    self.testCmdMockDomainReplace(self.stdev_id, parent);
    self.errPasidAttach('EINVAL', pasid, s2);
    // RID on a PASID-compatible domain: a PASID attach succeeds,
    self.testCmdMockDomainReplace(self.stdev_id, s2);
    self.testCmdPasidAttach(pasid, nested0);
    // and moving the RID to a non-PASID-compatible domain now fails.
    self.errMockDomainReplace('EINVAL', self.stdev_id, parent);
    self.testCmdPasidDetach(pasid);
    check(pasid, 0);

    if (!variant.pasid_capable) {
      // A PASID-compatible domain can be used by a non-PASID-capable device,
      self.testCmdMockDomainReplace(self.no_pasid_stdev_id, nested0);
      self.testCmdMockDomainReplace(self.no_pasid_stdev_id, self.ioas_id);
      // but attaching a PASID of that device fails, whatever the domain.
      expectErrno('EINVAL', () => self._pasidAttach(self.no_pasid_stdev_id, pasid, parent), 'PASID attach on a non-PASID device');
      expectErrno('EINVAL', () => self._pasidAttach(self.no_pasid_stdev_id, pasid, s2), 'PASID attach on a non-PASID device');
    }

    // A non-PASID-compatible hwpt on a PASID fails and leaves no domain
    self.errPasidAttach('EINVAL', pasid, parent);
    check(pasid, 0);
    // An IOAS on a PASID fails and leaves no domain
    self.errPasidAttach('EINVAL', pasid, self.ioas_id);
    check(pasid, 0);
    // The s2 hwpt on PASID 100 succeeds
    self.testCmdPasidAttach(pasid, s2);
    check(pasid, s2);
    // Attach does not overwrite (REPLACE does)
    self.errPasidAttach('EBUSY', pasid, nested0);
    self.testCmdPasidDetach(pasid);
    check(pasid, 0);
    // A nested hwpt on PASID 100 succeeds
    self.testCmdPasidAttach(pasid, nested0);
    check(pasid, nested0);
    self.errPasidAttach('EBUSY', pasid, nested0);
    self.testCmdPasidDetach(pasid);

    // Replace tests
    pasid = 200;
    // Replacing a PASID that is not attached fails
    self.errPasidReplace('EINVAL', pasid, s2);
    self.testCmdPasidAttach(pasid, s2);
    check(pasid, s2);
    // Replacing with an IOAS fails and keeps the s2 hwpt
    self.errPasidReplace('EINVAL', pasid, self.ioas_id);
    check(pasid, s2);
    self.testCmdPasidReplace(pasid, nested0);
    check(pasid, nested0);
    self.testCmdPasidReplace(pasid, nested1);
    check(pasid, nested1);
    self.testCmdPasidDetach(pasid);

    // PASID 1024 (IOMMU_TEST_PASID_RESERVED) is the mock's designed replace failure: ENOMEM, old domain kept
    pasid = 1024;
    self.testCmdPasidAttach(pasid, s2);
    check(pasid, s2);
    self.errPasidReplace('ENOMEM', pasid, nested0);
    check(pasid, s2);
    self.testCmdPasidDetach(pasid);

    // An iopf-capable hwpt on PASID 2048
    pasid = 2048;
    self.testCmdPasidAttach(pasid, iopfHwpt);
    check(pasid, iopfHwpt);
    self.testCmdTriggerIopfPasid(self.device_id, pasid, faultFd);
    self.testCmdPasidReplace(pasid, s2);
    check(pasid, s2);
    self.testCmdPasidDetach(pasid);

    self.testIoctlDestroy(iopfHwpt);
    self.process.close(faultFd);
    self.testIoctlDestroy(faultId);
    // Detach the s2 hwpt from the RID
    self.testCmdMockDomainReplace(self.stdev_id, self.ioas_id);
  }),
];
