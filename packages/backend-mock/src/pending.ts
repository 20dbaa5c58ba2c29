// Scenarios that cannot pass on the simulator yet because a part of @viommu/core they need has not
// landed. Each is reported skipped with the missing feature named; remove an entry as soon as the
// feature lands (the jest test then runs the case and requires it to pass).

export const pendingOnSimulator: ReadonlyMap<string, string> = new Map([]);
