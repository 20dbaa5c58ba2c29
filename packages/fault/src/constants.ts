// Kernel-internal values the queues need that are not part of the uAPI header
// (include/linux/iommu.h, include/uapi/linux/eventpoll.h), plus the bounds eventq.c enforces.

import {
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
  iommu_vevent_arm_smmuv3,
  iommu_vevent_tegra241_cmdqv,
  iommu_viommu_event_selftest,
} from '@viommu/uapi';

/** enum iommu_page_response_code: what a device receives for a page-request group. */
export const IOMMU_PAGE_RESP_SUCCESS = 0; // "Success" in PCI PRI: retry the access
export const IOMMU_PAGE_RESP_INVALID = 1; // "Invalid Request": do not retry
export const IOMMU_PAGE_RESP_FAILURE = 2; // "Response Failure": the device may stop issuing requests

/** struct iommu_fault_page_request flags. The first two equal the uAPI's IOMMU_PGFAULT_FLAGS_*. */
export const IOMMU_FAULT_PAGE_REQUEST_PASID_VALID = 1 << 0;
export const IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE = 1 << 1;
/** Set by the VT-d and AMD fault sources on requests with a PASID; copied verbatim into read records. */
export const IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID = 1 << 2;

/** The largest veventq_depth VEVENTQ_ALLOC accepts (eventq.c VEVENTQ_MAX_DEPTH). */
export const VEVENTQ_MAX_DEPTH = 1 << 19;

/** vEVENT sequence numbers count modulo 2^31 (`& INT_MAX`). */
export const VEVENT_SEQUENCE_MASK = 0x7fff_ffff;

/** poll bits the uAPI package does not export (asm-generic/poll.h). */
export const POLLRDNORM = 0x040;

/** sizeof(struct iommufd_vevent_header). */
export const VEVENT_HEADER_SIZE = 8;

/** Payload bytes that follow each header, per vEVENTQ type (the struct a driver reports for it). */
export const VEVENT_PAYLOAD_SIZE: ReadonlyMap<number, number> = new Map([
  [IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, iommu_vevent_arm_smmuv3.size],
  [IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV, iommu_vevent_tegra241_cmdqv.size],
  [IOMMU_VEVENTQ_TYPE_SELFTEST, iommu_viommu_event_selftest.size],
]);
