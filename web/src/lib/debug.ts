// Debug mode: `?debug` in the address turns it on for the tab (remembered in
// sessionStorage, so the app's own navigation and reloads keep it), `?debug=0` off again.
// It shows the per-tile overlay (received resolution, layers, score) and exposes the call
// as `window.roomlerCall` for the browser tests; a production page without it exposes
// nothing.
const KEY = 'roomler.debug';

export function debugMode(): boolean {
	const param = new URLSearchParams(window.location.search).get('debug');
	try {
		if (param !== null) {
			if (param === '0' || param === 'false') sessionStorage.removeItem(KEY);
			else sessionStorage.setItem(KEY, '1');
		}
		return sessionStorage.getItem(KEY) === '1';
	} catch {
		return param !== null && param !== '0' && param !== 'false'; // storage blocked
	}
}

/** Make `value` reachable as `window[name]` in debug mode only; returns the undo. */
export function exposeForDebug(name: string, value: unknown): () => void {
	if (!debugMode()) return () => undefined;
	const global = window as unknown as Record<string, unknown>;
	global[name] = value;
	return () => {
		if (global[name] === value) delete global[name];
	};
}
