// The inspection page in a real browser: Debian's /usr/bin/chromium, headless, driven by
// playwright-core (never `playwright install`), against a real daemon child and real clients.
// Without /usr/bin/chromium the suite is skipped and says why (apt-get install -y chromium).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { connectDaemonProcess, type DaemonProcess } from '@viommu/protocol';
import { IOMMU_IOAS_ALLOC, iommu_ioas_alloc } from '@viommu/uapi';
import { APP_DIR, buildDaemon, type RunningDaemon } from '../spawn-daemon.js';
import { nestedFlow, type NestedFlow } from './nested-flow.js';
import { startInspectedDaemon, until } from './test-support.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Screenshots land here (ignored by src/inspect/.gitignore). */
export const SCREENSHOT_DIR = join(APP_DIR, 'src/inspect/screenshots');

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  process.stderr.write(`viommud browser test SKIPPED: ${CHROMIUM} is missing (Debian: apt-get install -y chromium); the inspection page was not tested in a browser.\n`);
}
const suite = haveChromium ? describe : describe.skip;

suite(`the inspection page in headless Chromium${haveChromium ? '' : ` (skipped: ${CHROMIUM} is missing; apt-get install -y chromium)`}`, () => {
  let daemon: RunningDaemon;
  let url: string;
  let profile: string;
  let browser: BrowserContext;
  let page: Page;
  const requests: string[] = [];
  let a: DaemonProcess;
  let f: NestedFlow;
  let idA: number;

  beforeAll(async () => {
    buildDaemon();
    ({ daemon, url } = await startInspectedDaemon());
    profile = mkdtempSync(join(tmpdir(), 'viommud-chromium-'));
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 } });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('request', (r) => requests.push(r.url()));
    a = await connectDaemonProcess(daemon.socketPath, { clientName: 'vmm-a' });
    idA = a.session.sessionId;
    f = await nestedFlow(a);
    await page.goto(url);
    // The build runs first and takes as long as the machine needs (not a limit on the daemon).
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await daemon?.stop();
    // Closing Chromium takes what it takes: no limit on the hook.
  }, 600_000);

  const card = (id: number) => page.locator(`section.client[data-client="${id}"]`);
  const node = (id: number, objId: number) => card(id).locator(`g.node[data-id="${objId}"]`);
  const stat = (id: number, name: string) => card(id).locator(`[data-stat="${name}"]`);
  const statNumber = async (id: number, name: string) => Number(await stat(id, name).textContent());

  it('draws the client\'s nested-flow objects with their ids, types and edges', async () => {
    await card(idA).waitFor();
    await expect(card(idA).locator('h2').textContent()).resolves.toBe(`client ${idA} \u201cvmm-a\u201d`);
    const expected: [number, string][] = [
      [f.ioas, 'IOAS'],
      [f.parent, 'HWPT_PAGING'],
      [f.viommu, 'VIOMMU'],
      [f.nested, 'HWPT_NESTED'],
      [f.vdevice, 'VDEVICE'],
      [f.veventq, 'VEVENTQ'],
      [f.hwQueue, 'HW_QUEUE'],
      [f.device, 'DEVICE'],
    ];
    for (const [id, type] of expected) {
      await node(idA, id).waitFor();
      expect(await node(idA, id).getAttribute('data-type')).toBe(type);
    }
    expect(await node(idA, f.viommu).locator('text.label').textContent()).toBe(`vIOMMU ${f.viommu}`);
    expect(await node(idA, f.vdevice).locator('text.detail').textContent()).toMatch(/^virt_id 0x99 · /);
    const keyOf = async (id: number) => (await node(idA, id).getAttribute('data-key'))!;
    const edge = async (from: number, to: number, relation: string) =>
      card(idA).locator(`path.edge[data-from="${await keyOf(from)}"][data-to="${await keyOf(to)}"][data-relation="${relation}"]`).count();
    expect(await edge(f.ioas, f.parent, 'hwpt')).toBe(1);
    expect(await edge(f.parent, f.viommu, 'viommu')).toBe(1);
    expect(await edge(f.viommu, f.vdevice, 'vdevice')).toBe(1);
    expect(await edge(f.viommu, f.hwQueue, 'hw_queue')).toBe(1);
    expect(await edge(f.viommu, f.veventq, 'veventq')).toBe(1);
    expect(await edge(f.nested, f.device, 'attached')).toBe(1);
    expect(await card(idA).locator('path.edge').count()).toBe(11);
    // The layout's rows: IOAS above the HWPT above the vIOMMU above its vDEVICE.
    const y = async (id: number) => (await node(idA, id).boundingBox())!.y;
    expect(await y(f.ioas)).toBeLessThan(await y(f.parent));
    expect(await y(f.parent)).toBeLessThan(await y(f.viommu));
    expect(await y(f.viommu)).toBeLessThan(await y(f.vdevice));
  });

  it('shows a new object live, without a reload', async () => {
    await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
    const arg = iommu_ioas_alloc.encode({ size: iommu_ioas_alloc.size, flags: 0, out_ioas_id: 0 });
    a.ioctl(f.self.fd, IOMMU_IOAS_ALLOC, arg);
    const ioas2 = iommu_ioas_alloc.get(arg, 'out_ioas_id') as number;
    await node(idA, ioas2).waitFor();
    expect(await node(idA, ioas2).getAttribute('data-type')).toBe('IOAS');
    expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    f.destroy(ioas2);
    await node(idA, ioas2).waitFor({ state: 'detached' });
  });

  it('updates counts and rates after invalidations and events', async () => {
    expect(await statNumber(idA, 'invalidations')).toBe(0);
    for (let i = 0; i < 5; i++) f.invalidate(4);
    f.trigger(3);
    await until(async () => (await statNumber(idA, 'invalidations')) === 5, 'the invalidation count on the page');
    await until(async () => (await statNumber(idA, 'invalidation-rate')) > 0, 'an invalidation rate on the page');
    await until(async () => (await statNumber(idA, 'events')) === 3, 'the event count on the page');
    await until(async () => (await statNumber(idA, 'queue-depth')) === 3, 'the queue depth on the page');
    expect(await node(idA, f.veventq).locator('text.detail').textContent()).toBe('3/16 queued · 0 lost');
    await page.locator('details summary').first().click();
    const row = card(idA).locator('table.ioctls tr', { hasText: 'IOMMU_HWPT_INVALIDATE' });
    expect(await row.locator('td').nth(1).textContent()).toBe('5');
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'inspect.png'), fullPage: true });
  });

  it('removes a destroyed object and its edges', async () => {
    f.destroy(f.hwQueue);
    await node(idA, f.hwQueue).waitFor({ state: 'detached' });
    expect(await card(idA).locator('path.edge[data-relation="hw_queue"]').count()).toBe(0);
    expect(await card(idA).locator('g.node[data-type="ACCESS"]').count()).toBe(0);
  });

  it('adds a second client, and drops each client that disconnects', async () => {
    const b = await connectDaemonProcess(daemon.socketPath, { clientName: 'vmm-b' });
    const idB = b.session.sessionId;
    const fb = await nestedFlow(b);
    await node(idB, fb.viommu).waitFor();
    // Each client its own context: the same object ids in both cards.
    expect(await node(idB, fb.viommu).getAttribute('data-type')).toBe('VIOMMU');
    expect(fb.viommu).toBe(f.viommu);
    b.disconnect();
    await card(idB).waitFor({ state: 'detached' });
    expect(await card(idA).count()).toBe(1);
    a.disconnect();
    await card(idA).waitFor({ state: 'detached' });
    await page.locator('#empty').waitFor({ state: 'visible' });
    expect(await page.locator('#status').textContent()).toBe('live');
  });

  it('fetched nothing but its own origin', () => {
    const origin = new URL(url).origin;
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((r) => new URL(r).origin !== origin)).toEqual([]);
  });
});
