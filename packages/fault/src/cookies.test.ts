import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { CookieTable } from './cookies.js';

describe('CookieTable', () => {
  it('allocates the lowest free index >= 1, as xa_alloc with XA_FLAGS_ALLOC1 does', () => {
    const t = new CookieTable<string>();
    expect(['a', 'b', 'c', 'd'].map((v) => t.alloc(v))).toEqual([1, 2, 3, 4]);
    expect(t.take(3)).toBe('c');
    expect(t.take(1)).toBe('a');
    expect(t.take(1)).toBeUndefined();
    expect(t.get(0)).toBeUndefined();
    expect(t.alloc('e')).toBe(1);
    expect(t.alloc('f')).toBe(3);
    expect(t.alloc('g')).toBe(5);
    expect(t.size).toBe(5);
  });

  it('takeWhere removes matches in index order', () => {
    const t = new CookieTable<number>();
    for (let i = 0; i < 6; i++) t.alloc(i);
    expect(t.take(2)).toBe(1);
    expect(t.takeWhere((v) => v % 2 === 0)).toEqual([0, 2, 4]);
    expect(t.size).toBe(2);
    expect(t.alloc(99)).toBe(1);
  });

  it('matches a reference model under random alloc/take', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 20 })), { maxLength: 200 }), (ops) => {
        const t = new CookieTable<number>();
        const model = new Set<number>();
        for (const op of ops) {
          if (op < 0) {
            let want = 1;
            while (model.has(want)) want++;
            expect(t.alloc(want)).toBe(want);
            model.add(want);
          } else {
            expect(t.take(op)).toBe(model.has(op) ? op : undefined);
            model.delete(op);
          }
        }
        expect(t.size).toBe(model.size);
      }),
    );
  });
});
