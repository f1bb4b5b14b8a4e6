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

/**
 * Make `value` reachable as `window[name]`, but only while debug mode is on (checked on
 * each read: `?debug` added to the address later counts too); returns the undo.
 */
export function exposeForDebug(name: string, value: unknown): () => void {
	const getter = () => (debugMode() ? value : undefined);
	Object.defineProperty(window, name, { get: getter, configurable: true });
	return () => {
		if (Object.getOwnPropertyDescriptor(window, name)?.get === getter) {
			delete (window as unknown as Record<string, unknown>)[name];
		}
	};
}
