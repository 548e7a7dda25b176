// Drives the status page of a Keyring node in Debian's headless chromium.
//   node status_page.mjs URL SCREENSHOT_DIR EXPECTED_UP
// Prints one JSON object per line on stdout:
//   {"event":"up","count":3,...}        the page shows EXPECTED_UP nodes up
//   then waits for a line "watch <node_id>" on stdin, answers {"event":"armed"},
//   {"event":"down","elapsed_ms":...}   that node's row turned down (no reload)
//   then waits for a line "transfer", answers {"event":"transfer_armed"},
//   {"event":"transfer","text":...}      a finished transfer's row (no reload)
//   {"event":"done","screenshots":[...]}
// Any failure: {"event":"error","message":...} and exit code 1.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { join } from "node:path";

const [url, shotDir, expectedUp] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
let browser;

async function main() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    // playwright gives the browser a fresh, empty profile of its own.
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.waitForFunction((n) => document.querySelector("[data-testid=peer-count]")?.textContent === n,
                             expectedUp, { timeout: 30000 });
  await page.waitForFunction(() => window.__keyring && window.__keyring.connected, null, { timeout: 10000 });
  const rows = await page.$$eval("[data-testid=node-row]", (rs) => rs.map((r) => ({ id: r.dataset.nodeId, node: r.dataset.node, status: r.dataset.status })));
  const first = join(shotDir, "status_page_all_up.png");
  await page.screenshot({ path: first, fullPage: true });
  say({ event: "up", count: Number(expectedUp), rows });

  const { value } = await lines.next();
  const id = String(value || "").replace(/^watch /, "").trim();
  const navigations = [];
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
  const t0 = Date.now();
  say({ event: "armed" });
  await page.waitForSelector(`[data-testid=node-row][data-node-id="${id}"][data-status=down]`, { timeout: 10000 });
  const elapsed = Date.now() - t0;
  const topo = await page.$eval(`[data-testid=topo-node][data-node-id="${id}"]`, (c) => c.dataset.status);
  const upNow = await page.$eval("[data-testid=peer-count]", (e) => e.textContent);
  const second = join(shotDir, "status_page_one_down.png");
  await page.screenshot({ path: second, fullPage: true });
  say({ event: "down", elapsed_ms: elapsed, topology_status: topo, up_now: Number(upNow), reloads: navigations.length, page_errors: errors });

  // A transfer the node runs shows up with its progress, live.
  await lines.next();
  say({ event: "transfer_armed" });
  await page.waitForSelector("[data-testid=transfer][data-stage=done]", { timeout: 30000 });
  const transfer = await page.$eval("[data-testid=transfer][data-stage=done]", (r) => r.textContent);
  const third = join(shotDir, "status_page_transfer.png");
  await page.screenshot({ path: third, fullPage: true });
  say({ event: "transfer", text: transfer, reloads: navigations.length, page_errors: errors });
  say({ event: "done", screenshots: [first, second, third] });
}

main()
  .then(async () => { await browser.close(); process.exit(0); })
  .catch(async (e) => {
    say({ event: "error", message: String(e && e.stack || e) });
    try { await browser?.close(); } catch (_) {}
    process.exit(1);
  });
