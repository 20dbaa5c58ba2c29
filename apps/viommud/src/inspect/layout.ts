// A layered drawing of an object graph: one row per kind of object, IOAS at the top, then HWPTs,
// vIOMMUs, what hangs off a vIOMMU, devices. Pure: positions from nodes and edges only.
//
// Rows come from the object type (the iommufd object model is layered by construction), and
// within a row nodes are ordered by the mean position of the nodes that point to them (one
// barycentre pass down, one up), which keeps a vIOMMU's children under it and limits crossings.

export interface LayoutInput {
  readonly nodes: readonly { readonly key: string; readonly type: string; readonly context: number; readonly id: number }[];
  readonly edges: readonly { readonly from: string; readonly to: string }[];
}

export interface Box {
  readonly x: number;
  readonly y: number;
}

export interface Layout {
  readonly width: number;
  readonly height: number;
  readonly nodeWidth: number;
  readonly nodeHeight: number;
  /** Top-left corner of each node's box, by key. */
  readonly boxes: Readonly<Record<string, Box>>;
}

/** The row of each object type (before empty rows are dropped). */
export const LAYER_OF: Readonly<Record<string, number>> = {
  IOAS: 0,
  HWPT_PAGING: 1,
  VIOMMU: 2,
  HWPT_NESTED: 3,
  VDEVICE: 3,
  HW_QUEUE: 3,
  VEVENTQ: 3,
  FAULT: 4,
  DEVICE: 4,
  ACCESS: 4,
  SELFTEST: 5,
};

const TYPE_ORDER = ['IOAS', 'HWPT_PAGING', 'VIOMMU', 'HWPT_NESTED', 'VDEVICE', 'HW_QUEUE', 'VEVENTQ', 'FAULT', 'DEVICE', 'ACCESS', 'SELFTEST'];

export const NODE_WIDTH = 168;
export const NODE_HEIGHT = 44;
const GAP_X = 20;
const GAP_Y = 56;
const MARGIN = 12;

export function layeredLayout(g: LayoutInput): Layout {
  const rowOf = (type: string) => LAYER_OF[type] ?? 6;
  const used = [...new Set(g.nodes.map((n) => rowOf(n.type)))].sort((a, b) => a - b);
  const rows: string[][] = used.map(() => []);
  const rowIndex = new Map<string, number>();
  const typeRank = (t: string) => (TYPE_ORDER.indexOf(t) + TYPE_ORDER.length + 1) % (TYPE_ORDER.length + 1);
  const sorted = [...g.nodes].sort((a, b) => typeRank(a.type) - typeRank(b.type) || a.context - b.context || a.id - b.id);
  for (const n of sorted) {
    const r = used.indexOf(rowOf(n.type));
    rowIndex.set(n.key, r);
    rows[r]!.push(n.key);
  }
  const pos = new Map<string, number>();
  const place = () => rows.forEach((row) => row.forEach((k, i) => pos.set(k, i - (row.length - 1) / 2)));
  place();
  const up = new Map<string, string[]>();
  const down = new Map<string, string[]>();
  for (const e of g.edges) {
    const a = rowIndex.get(e.from);
    const b = rowIndex.get(e.to);
    if (a === undefined || b === undefined || a === b) continue;
    const [hi, lo] = a < b ? [e.from, e.to] : [e.to, e.from];
    (up.get(lo) ?? up.set(lo, []).get(lo)!).push(hi);
    (down.get(hi) ?? down.set(hi, []).get(hi)!).push(lo);
  }
  const reorder = (row: string[], neighbours: Map<string, string[]>) => {
    const weight = new Map<string, number>();
    for (const k of row) {
      const ns = neighbours.get(k);
      weight.set(k, ns && ns.length ? ns.reduce((s, n) => s + pos.get(n)!, 0) / ns.length : pos.get(k)!);
    }
    // Stable sort keeps type/id order among equal weights.
    row.sort((a, b) => weight.get(a)! - weight.get(b)!);
  };
  for (let r = 1; r < rows.length; r++) {
    reorder(rows[r]!, up);
    place();
  }
  for (let r = rows.length - 2; r >= 0; r--) {
    reorder(rows[r]!, down);
    place();
  }
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = MARGIN * 2 + widest * NODE_WIDTH + (widest - 1) * GAP_X;
  const height = MARGIN * 2 + rows.length * NODE_HEIGHT + Math.max(0, rows.length - 1) * GAP_Y;
  const boxes: Record<string, Box> = {};
  rows.forEach((row, r) => {
    const rowWidth = row.length * NODE_WIDTH + (row.length - 1) * GAP_X;
    const left = (width - rowWidth) / 2;
    row.forEach((k, i) => {
      boxes[k] = { x: Math.round(left + i * (NODE_WIDTH + GAP_X)), y: MARGIN + r * (NODE_HEIGHT + GAP_Y) };
    });
  });
  return { width, height: rows.length ? height : MARGIN * 2, nodeWidth: NODE_WIDTH, nodeHeight: NODE_HEIGHT, boxes };
}
