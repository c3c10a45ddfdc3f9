/**
 * The DAG compiler's graph algorithms over the nodes' `needs`: a topological order (Kahn's algorithm, ties broken
 * by source order), the cycles among the nodes it could not place (strongly connected components), and a shortest
 * cycle to name in the issue. Iterative, so a long chain cannot overflow the stack; pure code.
 */

export interface GraphNode {
  /** Index in the source `nodes` array. */
  index: number;
  id: string;
  type: unknown;
  /** Indexes of known parents, deduplicated, without self. */
  parents: number[];
}

/** Topological order by Kahn's algorithm; among ready nodes the earliest in the source goes first. */
export function topologicalOrder(graph: Map<number, GraphNode>): { order: number[]; placed: Set<number> } {
  const indegree = new Map<number, number>();
  const children = new Map<number, number[]>();
  for (const g of graph.values()) {
    indegree.set(g.index, g.parents.length);
    for (const p of g.parents) {
      const list = children.get(p);
      if (list) list.push(g.index);
      else children.set(p, [g.index]);
    }
  }
  const ready = new IndexHeap();
  for (const [i, d] of indegree) if (d === 0) ready.push(i);
  const order: number[] = [];
  const placed = new Set<number>();
  while (ready.size > 0) {
    const i = ready.pop();
    if (i === undefined) break;
    order.push(i);
    placed.add(i);
    for (const c of children.get(i) ?? []) {
      const d = (indegree.get(c) ?? 0) - 1;
      indegree.set(c, d);
      if (d === 0) ready.push(c);
    }
  }
  return { order, placed };
}

/** Strongly connected components of the unplaced nodes (Kosaraju, iterative: no recursion depth limit). */
export function cyclicComponents(graph: Map<number, GraphNode>, placed: Set<number>): number[][] {
  const members = [...graph.keys()].filter((i) => !placed.has(i)).sort((a, b) => a - b);
  const inSet = new Set(members);
  const edges = (i: number): number[] => (graph.get(i)?.parents ?? []).filter((p) => inSet.has(p));
  const reverse = new Map<number, number[]>();
  for (const i of members) {
    for (const p of edges(i)) {
      const list = reverse.get(p);
      if (list) list.push(i);
      else reverse.set(p, [i]);
    }
  }
  const visited = new Set<number>();
  const finish: number[] = [];
  for (const s of members) {
    if (visited.has(s)) continue;
    visited.add(s);
    const stack: Array<{ v: number; next: number; out: number[] }> = [{ v: s, next: 0, out: edges(s) }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (!top) break;
      const w = top.out[top.next];
      if (w !== undefined) {
        top.next++;
        if (!visited.has(w)) {
          visited.add(w);
          stack.push({ v: w, next: 0, out: edges(w) });
        }
      } else {
        stack.pop();
        finish.push(top.v);
      }
    }
  }
  const assigned = new Set<number>();
  const components: number[][] = [];
  for (let k = finish.length - 1; k >= 0; k--) {
    const s = finish[k];
    if (s === undefined || assigned.has(s)) continue;
    const comp: number[] = [];
    const stack = [s];
    assigned.add(s);
    while (stack.length > 0) {
      const v = stack.pop();
      if (v === undefined) break;
      comp.push(v);
      for (const w of reverse.get(v) ?? []) {
        if (!assigned.has(w)) {
          assigned.add(w);
          stack.push(w);
        }
      }
    }
    if (comp.length > 1) components.push(comp.sort((a, b) => a - b));
  }
  return components.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
}

/** A shortest cycle through `start` inside `component`, following needs: [start, p1, ..., start]. */
export function cycleThrough(graph: Map<number, GraphNode>, component: number[], start: number): number[] {
  const inComp = new Set(component);
  const prev = new Map<number, number>();
  const queue = [start];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q] ?? start;
    for (const p of graph.get(v)?.parents ?? []) {
      if (!inComp.has(p)) continue;
      if (p === start) {
        const path = [start];
        let cur = v;
        while (cur !== start) {
          path.push(cur);
          cur = prev.get(cur) ?? start;
        }
        const forward = [start, ...path.slice(1).reverse()];
        forward.push(start);
        return forward;
      }
      if (!prev.has(p)) {
        prev.set(p, v);
        queue.push(p);
      }
    }
  }
  return [start, start];
}

/** A min-heap of node indexes, so Kahn's algorithm breaks ties by source order in O(n log n). */
class IndexHeap {
  private readonly a: number[] = [];

  get size(): number {
    return this.a.length;
  }

  push(v: number): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((a[p] ?? 0) <= v) break;
      a[i] = a[p] ?? 0;
      i = p;
    }
    a[i] = v;
  }

  pop(): number | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let mv = last;
      if (l < a.length && (a[l] ?? 0) < mv) {
        m = l;
        mv = a[l] ?? 0;
      }
      if (r < a.length && (a[r] ?? 0) < mv) m = r;
      if (m === i) break;
      a[i] = a[m] ?? 0;
      i = m;
    }
    a[i] = last;
    return top;
  }
}
