// The signed-in session: tokens kept in localStorage so a reload stays signed in.
//
// The access token is refreshed shortly before it expires (by the `expires_in` the server
// gave, so the client's clock only has to measure an interval), and all callers that need
// one at the same moment share a single refresh request. Other tabs see a refresh or a
// sign-out through the `storage` event.
import { signal } from '@preact/signals';
import type { AuthResponse, User } from './types';

const STORAGE_KEY = 'roomler.session';
// Refresh this long before the access token's expiry (at most a quarter of its lifetime),
// so no request carries a dying token; plus a second because the server counts whole
// seconds (`iat` is truncated, so a token may expire up to 1 s before we reckon).
const REFRESH_MARGIN_MS = 30_000;
const WHOLE_SECOND_MS = 1_000;

interface StoredSession {
	accessToken: string;
	refreshToken: string;
	accessExpiresAt: number; // epoch milliseconds
	accessLifetimeMs: number;
	user: User;
}

/** The tokens are gone (signed out, or the refresh token was refused). */
export class SignedOut extends Error {
	constructor() {
		super('Not signed in');
		this.name = 'SignedOut';
	}
}

function load(): StoredSession | null {
	try {
		const raw = localStorage.getItem(STORAGE_KEY);
		if (raw === null) return null;
		const parsed = JSON.parse(raw) as StoredSession;
		return parsed.refreshToken && parsed.user?.id ? parsed : null;
	} catch {
		return null;
	}
}

let stored: StoredSession | null = load();
let refreshing: Promise<string> | null = null;

/** The signed-in user, or null; the UI routes to the sign-in page when it becomes null. */
export const currentUser = signal<User | null>(stored?.user ?? null);

window.addEventListener('storage', (event) => {
	if (event.key !== STORAGE_KEY) return;
	stored = load();
	currentUser.value = stored?.user ?? null;
});

export function startSession(auth: AuthResponse): void {
	stored = {
		accessToken: auth.access_token,
		refreshToken: auth.refresh_token,
		accessExpiresAt: Date.now() + auth.expires_in * 1000,
		accessLifetimeMs: auth.expires_in * 1000,
		user: auth.user,
	};
	localStorage.setItem(STORAGE_KEY, JSON.stringify(stored));
	if (JSON.stringify(currentUser.value) !== JSON.stringify(auth.user)) currentUser.value = auth.user;
}

export function updateUser(user: User): void {
	if (stored === null) return;
	stored = { ...stored, user };
	localStorage.setItem(STORAGE_KEY, JSON.stringify(stored));
	currentUser.value = user;
}

export function endSession(): void {
	stored = null;
	refreshing = null;
	localStorage.removeItem(STORAGE_KEY);
	currentUser.value = null;
}

/** The access token as it is now, for a request that cannot wait (the page is closing). */
export function currentAccessToken(): string | null {
	return stored !== null && stored.accessExpiresAt > Date.now() ? stored.accessToken : null;
}

/** A usable access token, refreshed first when it is about to expire. */
export async function accessToken(): Promise<string> {
	if (stored === null) throw new SignedOut();
	const margin = Math.min(REFRESH_MARGIN_MS, (stored.accessLifetimeMs ?? 0) / 4) + WHOLE_SECOND_MS;
	if (stored.accessExpiresAt - Date.now() > margin) return stored.accessToken;
	return refreshAccessToken();
}

/** Trade the refresh token for a new pair; a refused refresh token ends the session. */
export function refreshAccessToken(): Promise<string> {
	if (stored === null) return Promise.reject(new SignedOut());
	const presented = stored.refreshToken;
	refreshing ??= oneTabAtATime(() => exchangeUnlessRotated(presented)).finally(() => {
		refreshing = null;
	});
	return refreshing;
}

/** The refresh token the server knows this session by, for signing out. */
export function currentRefreshToken(): string | null {
	return stored?.refreshToken ?? null;
}

// A refresh token works once: the server revokes the whole session when a used one comes
// back. The tabs share one session, so they refresh in turn (a Web Lock across tabs), and
// a tab that finds the token already rotated by another takes the new pair instead.
function oneTabAtATime<T>(task: () => Promise<T>): Promise<T> {
	if (!navigator.locks) return task();
	return navigator.locks.request('roomler.refresh', task);
}

async function exchangeUnlessRotated(presented: string): Promise<string> {
	const latest = load();
	if (latest === null) {
		endSession();
		throw new SignedOut();
	}
	if (latest.refreshToken !== presented) {
		stored = latest;
		return latest.accessToken;
	}
	return exchange(presented);
}

async function exchange(refreshToken: string): Promise<string> {
	const response = await fetch('/api/auth/refresh', {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify({ refresh_token: refreshToken }),
	});
	if (response.status === 401) {
		endSession();
		throw new SignedOut();
	}
	if (!response.ok) throw new Error(`Refreshing the session failed (${response.status})`);
	const auth = (await response.json()) as AuthResponse;
	startSession(auth);
	return auth.access_token;
}
