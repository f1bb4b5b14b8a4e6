// Client-side routing on the History API; the server answers index.html for every path.
import { signal } from '@preact/signals';

export const currentPath = signal(location.pathname);

window.addEventListener('popstate', () => {
	currentPath.value = location.pathname;
});

export function navigate(to: string, options: { replace?: boolean } = {}): void {
	if (to === location.pathname) return;
	if (options.replace) history.replaceState(null, '', to);
	else history.pushState(null, '', to);
	currentPath.value = to;
}

export type Route =
	| { name: 'login' }
	| { name: 'signup' }
	| { name: 'invite'; code: string }
	| { name: 'home' }
	| { name: 'tenants' }
	| { name: 'tenant'; tenantId: string }
	| { name: 'channel'; tenantId: string; channelId: string }
	| { name: 'explore'; tenantId: string }
	| { name: 'calls'; tenantId: string }
	| { name: 'call'; tenantId: string; conferenceId: string }
	| { name: 'not-found' };

const ID = '([0-9a-f]{24})';
const PATTERNS: [RegExp, (m: RegExpMatchArray) => Route][] = [
	[/^\/$/, () => ({ name: 'home' })],
	[/^\/login$/, () => ({ name: 'login' })],
	[/^\/signup$/, () => ({ name: 'signup' })],
	// An invitation link (src/roomler/api/invitations.py).
	[/^\/invite\/([A-Za-z0-9_-]{8,64})$/, (m) => ({ name: 'invite', code: m[1]! })],
	[/^\/tenants$/, () => ({ name: 'tenants' })],
	[new RegExp(`^/t/${ID}$`), (m) => ({ name: 'tenant', tenantId: m[1]! })],
	[new RegExp(`^/t/${ID}/c/${ID}$`), (m) => ({ name: 'channel', tenantId: m[1]!, channelId: m[2]! })],
	[new RegExp(`^/t/${ID}/explore$`), (m) => ({ name: 'explore', tenantId: m[1]! })],
	[new RegExp(`^/t/${ID}/calls$`), (m) => ({ name: 'calls', tenantId: m[1]! })],
	[
		new RegExp(`^/t/${ID}/call/${ID}$`),
		(m) => ({ name: 'call', tenantId: m[1]!, conferenceId: m[2]! }),
	],
	// A conference's `join_url` (src/roomler/api/conferences.py).
	[
		new RegExp(`^/tenant/${ID}/conference/${ID}$`),
		(m) => ({ name: 'call', tenantId: m[1]!, conferenceId: m[2]! }),
	],
];

export function matchRoute(path: string): Route {
	const trimmed = path.length > 1 ? path.replace(/\/+$/, '') : path;
	for (const [pattern, build] of PATTERNS) {
		const match = trimmed.match(pattern);
		if (match) return build(match);
	}
	return { name: 'not-found' };
}

export const paths = {
	tenant: (tid: string) => `/t/${tid}`,
	channel: (tid: string, cid: string) => `/t/${tid}/c/${cid}`,
	explore: (tid: string) => `/t/${tid}/explore`,
	calls: (tid: string) => `/t/${tid}/calls`,
	call: (tid: string, conferenceId: string) => `/t/${tid}/call/${conferenceId}`,
};
