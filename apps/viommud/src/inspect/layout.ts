// A layered drawing of an object graph: one row per kind of object, IOAS at the top, then HWPTs,
// vIOMMUs, what hangs off a vIOMMU, devices. Pure: positions from nodes and edges only.
//
// Rows come from the object type (the iommufd object model is layered by construction). An edge
// that spans several rows gets a narrow placeholder in each row it crosses, so it is routed
// between the boxes, not through them (the usual layered-drawing technique). Within a row, boxes
// and placeholders are ordered by the mean position of their neighbours (barycentre sweeps down
// and up), which keeps a vIOMMU's children under it and limits crossings.

export interface LayoutInput {
  readonly nodes: readonly { readonly key: string; readonly type: string; readonly context: number; readonly id: number }[];
  readonly edges: readonly { readonly from: string; readonly to: string }[];
}

export interface Point {
  readonly x: number;
  readonly y: number;
}

export interface Layout {
  readonly width: number;
  readonly height: number;
  readonly nodeWidth: number;
  readonly nodeHeight: number;
  /** Top-left corner of each node's box, by key. */
  readonly boxes: Readonly<Record<string, Point>>;
  /**
   * For each input edge (same order): the points its line passes, from the holder's box edge to the
   * held one's. Two points for neighbouring rows (or the same row), more for an edge that spans rows;
   * empty when an endpoint is not a node.
   */
  readonly edges: readonly (readonly Point[])[];
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
/** Width of the slot a passing edge takes in a row. */
export const PASS_WIDTH = 12;
const GAP_X = 20;
const GAP_Y = 56;
const MARGIN = 12;

export function layeredLayout(g: LayoutInput): Layout {
  const rowOf = (type: string) => LAYER_OF[type] ?? 6;
  const used = [...new Set(g.nodes.map((n) => rowOf(n.type)))].sort((a, b) => a - b);
  const rows: string[][] = used.map(() => []);
  const rowIndex = new Map<string, number>();
  const isNode = new Set<string>();
  const typeRank = (t: string) => (TYPE_ORDER.indexOf(t) + TYPE_ORDER.length + 1) % (TYPE_ORDER.length + 1);
  const sorted = [...g.nodes].sort((a, b) => typeRank(a.type) - typeRank(b.type) || a.context - b.context || a.id - b.id);
  for (const n of sorted) {
    const r = used.indexOf(rowOf(n.type));
    rowIndex.set(n.key, r);
    rows[r]!.push(n.key);
    isNode.add(n.key);
  }

  // Each edge as a chain of slots, one per row it touches; placeholders in the rows between.
  const chains: string[][] = g.edges.map((e, i) => {
    const a = rowIndex.get(e.from);
    const b = rowIndex.get(e.to);
    if (a === undefined || b === undefined) return [];
    const chain = [e.from];
    const step = b > a ? 1 : -1;
    for (let r = a + step; r !== b && a !== b; r += step) {
      const k = `\u0000${i}:${r}`;
      rowIndex.set(k, r);
      rows[r]!.push(k);
      chain.push(k);
    }
    chain.push(e.to);
    return chain;
  });
  const up = new Map<string, string[]>();
  const down = new Map<string, string[]>();
  const link = (m: Map<string, string[]>, k: string, v: string) => (m.get(k) ?? m.set(k, []).get(k)!).push(v);
  for (const c of chains) {
    for (let i = 0; i + 1 < c.length; i++) {
      const [a, b] = [c[i]!, c[i + 1]!];
      const [hi, lo] = rowIndex.get(a)! < rowIndex.get(b)! ? [a, b] : [b, a];
      if (rowIndex.get(hi) === rowIndex.get(lo)) continue;
      link(up, lo, hi);
      link(down, hi, lo);
    }
  }

  const widthOf = (k: string) => (isNode.has(k) ? NODE_WIDTH : PASS_WIDTH);
  const rowWidth = (row: string[]) => row.reduce((s, k) => s + widthOf(k), 0) + Math.max(0, row.length - 1) * GAP_X;
  const center = new Map<string, number>();
  const place = (row: string[]) => {
    let x = -rowWidth(row) / 2;
    for (const k of row) {
      center.set(k, x + widthOf(k) / 2);
      x += widthOf(k) + GAP_X;
    }
  };
  rows.forEach(place);
  const reorder = (row: string[], neighbours: Map<string, string[]>) => {
    const weight = new Map<string, number>();
    for (const k of row) {
      const ns = neighbours.get(k);
      weight.set(k, ns && ns.length ? ns.reduce((s, n) => s + center.get(n)!, 0) / ns.length : center.get(k)!);
    }
    // Stable: equal weights keep type/ID order.
    row.sort((a, b) => weight.get(a)! - weight.get(b)!);
    place(row);
  };
  for (let pass = 0; pass < 2; pass++) {
    for (let r = 1; r < rows.length; r++) reorder(rows[r]!, up);
    for (let r = rows.length - 2; r >= 0; r--) reorder(rows[r]!, down);
  }

  const widest = Math.max(NODE_WIDTH, ...rows.map(rowWidth));
  const width = MARGIN * 2 + widest;
  const height = rows.length ? MARGIN * 2 + rows.length * NODE_HEIGHT + (rows.length - 1) * GAP_Y : MARGIN * 2;
  const cx = (k: string) => Math.round(center.get(k)! + width / 2);
  const top = (k: string) => MARGIN + rowIndex.get(k)! * (NODE_HEIGHT + GAP_Y);
  const boxes: Record<string, Point> = {};
  for (const k of isNode) boxes[k] = { x: cx(k) - NODE_WIDTH / 2, y: top(k) };

  const edges = chains.map((c) => {
    if (c.length === 0) return [];
    const pts: Point[] = [];
    const down1 = rowIndex.get(c[c.length - 1]!)! >= rowIndex.get(c[0]!)!;
    // Leave the holder at its bottom (or top, for an edge going up), enter the held box at the other side.
    pts.push({ x: cx(c[0]!), y: top(c[0]!) + (down1 ? NODE_HEIGHT : 0) });
    for (const k of c.slice(1, -1)) {
      // Through a row vertically, top to bottom of the row's band.
      const [y0, y1] = down1 ? [top(k), top(k) + NODE_HEIGHT] : [top(k) + NODE_HEIGHT, top(k)];
      pts.push({ x: cx(k), y: y0 }, { x: cx(k), y: y1 });
    }
    const last = c[c.length - 1]!;
    const sameRow = rowIndex.get(last) === rowIndex.get(c[0]!);
    pts.push({ x: cx(last), y: top(last) + (down1 && !sameRow ? 0 : NODE_HEIGHT) });
    return pts;
  });
  return { width, height, nodeWidth: NODE_WIDTH, nodeHeight: NODE_HEIGHT, boxes, edges };
}
