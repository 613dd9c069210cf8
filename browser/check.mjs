// Renders facility forms in headless Chromium and reports what each form does when submitted.
//
//   node browser/check.mjs JOB.json RESULTS.json
//
// JOB.json (written by facility_apis.testing.browser_check) lists the forms: facility, form
// ("request" or "altdata"), requestType, title, schema, uiSchema and the instances to submit.
// Each form is rendered in every mode of MODES; the results list, per form and mode, the untouched
// form's outcome and every instance's, the console errors and any request that tried to leave the
// page. The Python side judges them. The browser is Debian's Chromium (CHROMIUM overrides the
// path), never a downloaded one; the page comes from a file and may load nothing else.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// plain: @rjsf/core as the schema alone asks (the form library's own verdict, HTML5 checks off).
// skyportal: @rjsf/mui inside SkyPortal's wrapping, HTML5 checks on as in SkyPortal.
const MODES = {
  plain: { theme: "core", html5: false, wrap: () => null, shots: { request: "request" } },
  skyportal: {
    theme: "mui",
    html5: true,
    wrap: (form) =>
      form.form === "request"
        ? { kind: "request", requestType: form.requestType }
        : { kind: "allocation", instrumentTitle: form.title },
    shots: { request: "request-skyportal", altdata: "allocation" },
  },
};

async function bundle() {
  await build({
    entryPoints: [join(HERE, "src", "page.jsx")],
    outfile: join(HERE, "build", "page.js"),
    bundle: true,
    format: "iife",
    jsx: "automatic",
    target: "chrome120",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "error",
  });
}

// An outcome for a submission the page could not make (the form broke, or the page itself did).
const broken = (why, formData = null) => ({ submitted: false, blockedBy: "broken", broken: why, formData, html5: [], errors: [], raw: [] });
const SUBMIT = "#form-under-test form button[type=submit]";

/**
 * One page that checks forms one after another (each mount is a fresh React root). Console errors
 * go to the run in progress, with the step they came from. After a failure the page is replaced,
 * so one broken form never costs the others.
 */
class Worker {
  constructor(context) {
    this.context = context;
    this.page = null;
    this.run = null; // { log, step } of the form and mode in progress
  }

  async open() {
    if (this.page && !this.page.isClosed()) await this.page.close().catch(() => {});
    const page = await this.context.newPage();
    page.setDefaultTimeout(10000);
    const note = (text) => this.run?.log.push({ step: this.run.step, text });
    page.on("console", (msg) => msg.type() === "error" && note(msg.text()));
    page.on("pageerror", (error) => note(`uncaught: ${error.message}`));
    await page.goto(pathToFileURL(join(HERE, "page.html")).href);
    this.page = page;
  }

  // Whatever goes wrong in the page is that submission's outcome, never the end of the check.
  async attempt(formData, action) {
    try {
      if (!this.page || this.page.isClosed()) await this.open();
      return await action(this.page);
    } catch (error) {
      await this.page?.close().catch(() => {});
      return broken(`the page failed: ${error.message.split("\n")[0]}`, formData ?? null);
    }
  }

  async check(form, modeName, screenshotDir) {
    const mode = MODES[modeName];
    const log = [];
    this.run = { log, step: "untouched" };
    const spec = (formData) => ({ theme: mode.theme, html5: mode.html5, wrap: mode.wrap(form), schema: form.schema, uiSchema: form.uiSchema, formData });
    // The untouched form is submitted with a real mouse click, after its screenshot; each instance
    // is mounted and submitted (its button's click()) in one call to the page.
    const shot = mode.shots[form.form];
    const untouched = { id: "untouched" };
    Object.assign(
      untouched,
      await this.attempt(undefined, async (page) => {
        const mounted = await page.evaluate((s) => window.formCheck.mount(s), spec(undefined));
        if (shot && screenshotDir) {
          await page.mouse.move(0, 0); // no hover left over from the form this page checked before
          // Let the widgets' effects (MUI measures labels and notches after the first paint) and
          // the fonts settle, so the markup and the picture do not depend on timing.
          await page.evaluate(() => document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))));
          Object.assign(untouched, { screenshot: shot, markup: await page.evaluate(() => window.formCheck.markup()) });
          await page.locator("#form-under-test").screenshot({ path: join(screenshotDir, `${form.facility}-${shot}.png`) });
        }
        if (!mounted.broken) await page.click(SUBMIT); // else the outcome says why it cannot be submitted
        return { ...mounted, ...(await page.evaluate(() => window.formCheck.outcome())) };
      }),
    );
    const instances = [];
    for (const instance of form.instances) {
      this.run.step = instance.id;
      const outcome = await this.attempt(instance.data, (page) => page.evaluate((s) => window.formCheck.submit(s), spec(instance.data)));
      instances.push({ id: instance.id, ...outcome });
    }
    this.run = null;
    return { facility: form.facility, form: form.form, mode: modeName, untouched, instances, console: log };
  }

  async close() {
    await this.page?.close().catch(() => {});
  }
}

/** Every form in every mode, by `count` workers (pages) at once; results in job order. */
async function checkAll(context, forms, screenshotDir, count) {
  const tasks = forms.flatMap((form) => Object.keys(MODES).map((modeName) => [form, modeName]));
  const runs = new Array(tasks.length);
  let next = 0;
  const work = async () => {
    const worker = new Worker(context);
    while (next < tasks.length) {
      const index = next++;
      runs[index] = await worker.check(...tasks[index], screenshotDir);
    }
    await worker.close();
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(count, tasks.length)) }, work));
  return runs;
}

async function main([jobPath, resultsPath]) {
  const job = JSON.parse(readFileSync(jobPath, "utf8"));
  const started = performance.now();
  await bundle();
  const profile = mkdtempSync(join(tmpdir(), "form-check-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 720, height: 900 },
    deviceScaleFactor: 1,
    timezoneId: "UTC",
    locale: "en-US",
  });
  const left = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("file:")) return route.continue();
    left.push(url);
    return route.abort();
  });
  if (job.screenshotDir) mkdirSync(job.screenshotDir, { recursive: true });
  const probe = await context.newPage();
  const { product } = await (await context.newCDPSession(probe)).send("Browser.getVersion");
  await probe.close();
  let runs;
  try {
    runs = await checkAll(context, job.forms, job.screenshotDir, job.workers || 1);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  const versions = {};
  for (const name of ["@rjsf/core", "@rjsf/mui", "@rjsf/utils", "@rjsf/validator-ajv8", "ajv", "ajv-formats", "react", "@mui/material", "playwright-core"]) {
    versions[name] = JSON.parse(readFileSync(join(HERE, "node_modules", name, "package.json"), "utf8")).version;
  }
  versions.chromium = product.replace(/^\D*\//, "");
  const seconds = (performance.now() - started) / 1000;
  writeFileSync(resultsPath, JSON.stringify({ versions, seconds, workers: job.workers || 1, left, runs }, null, 1));
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error);
  process.exit(1);
});
