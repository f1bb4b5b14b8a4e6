// Builds the browser client into src/roomler/web/dist/ (served by `roomler serve` at /).
//
//   dist/index.html            the page, naming the current bundles (never cached)
//   dist/assets/main-HASH.js   the application, with its source map
//   dist/assets/main-HASH.css  the styles
//   dist/assets/*-HASH.js      code loaded on demand (the call view's mediasoup-client)
//
// Bundle names carry a content hash, so the server lets browsers cache them forever.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../src/roomler/web/dist');
const assets = path.join(dist, 'assets');

await rm(assets, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const result = await esbuild.build({
	entryPoints: [path.join(here, 'src/main.tsx')],
	outdir: assets,
	entryNames: '[name]-[hash]',
	chunkNames: '[name]-[hash]',
	splitting: true,
	bundle: true,
	format: 'esm',
	platform: 'browser',
	target: 'es2022',
	jsx: 'automatic',
	jsxImportSource: 'preact',
	minify: true,
	sourcemap: 'linked',
	metafile: true,
	logLevel: 'warning',
	define: { 'process.env.NODE_ENV': '"production"' },
});

const [entry, output] =
	Object.entries(result.metafile.outputs).find(([, meta]) => meta.entryPoint !== undefined) ?? [];
if (!entry || !output?.cssBundle) {
	throw new Error(`esbuild produced no entry script with a stylesheet`);
}
const script = path.basename(entry);
const style = path.basename(output.cssBundle);
const template = await readFile(path.join(here, 'index.html'), 'utf8');
const page = template
	.replace('<!-- styles -->', `<link rel="stylesheet" href="/assets/${style}">`)
	.replace('<!-- script -->', `<script type="module" src="/assets/${script}"></script>`);
await writeFile(path.join(dist, 'index.html'), page);
