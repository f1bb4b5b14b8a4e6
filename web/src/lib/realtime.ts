// The WebSocket at /ws (docs/protocol.md): one connection per tab, reconnected with backoff.
//
// The connection counts as open once the server's `connected` frame has arrived (it
// carries our connection id). When it drops, the client waits 0.5 s, 1 s, 2 s, ... (at
// most 10 s, with jitter so a restarted server is not hit by every tab at once), fetching a
// fresh access token before each attempt. A close with 4001 (the token expired) is
// retried at once and silently. `onReconnect` callbacks run after every reopening, so the
// application can catch up on what it missed through the REST history.
import { computed, signal } from '@preact/signals';
import { accessToken, refreshAccessToken, SignedOut } from './session';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting';

export interface ServerFrame {
	type: string;
	data: Record<string, unknown>;
	request_id?: string;
}

/** The server answered a request with `{"type": "error"}`. */
export class RequestFailed extends Error {
	constructor(
		readonly code: string,
		message: string,
	) {
		super(message);
		this.name = 'RequestFailed';
	}
}

type Handler = (data: never) => void;

const CLOSE_TOKEN_EXPIRED = 4001;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;

interface Pending {
	/** The reply type that completes the request; null: the first reply does. */
	until: string | null;
	frames: ServerFrame[];
	resolve: (frames: ServerFrame[]) => void;
	reject: (error: Error) => void;
	timer: number;
}

// Replies that fail a request (`media:*` handlers answer with their own error type).
const ERROR_TYPES = new Set(['error', 'media:error']);

export class RealtimeClient {
	readonly state = signal<ConnectionState>('idle');
	/** When the next attempt starts (epoch ms), while reconnecting. */
	readonly retryAt = signal<number | null>(null);
	/** Reconnecting after a drop the user should hear about (not a routine token renewal). */
	readonly troubled = signal(false);
	readonly showBanner = computed(() => this.state.value === 'reconnecting' && this.troubled.value);
	connectionId: string | null = null;

	private socket: WebSocket | null = null;
	private wanted = false;
	private everOpened = false;
	private failures = 0;
	private retryTimer: number | null = null;
	private pingTimer: number | null = null;
	private pongTimer: number | null = null;
	private nextRequestId = 1;
	private readonly pending = new Map<string, Pending>();
	private readonly handlers = new Map<string, Set<Handler>>();
	private readonly reconnectHooks = new Set<() => void>();

	constructor() {
		window.addEventListener('online', () => this.retryNow());
	}

	start(): void {
		if (this.wanted) return;
		this.wanted = true;
		this.everOpened = false;
		this.failures = 0;
		void this.open();
	}

	stop(): void {
		this.wanted = false;
		this.clearTimers();
		this.socket?.close(1000, 'signed out');
		this.socket = null;
		this.connectionId = null;
		this.state.value = 'idle';
		this.troubled.value = false;
		this.failPending('the connection was closed');
	}

	/** Attempt now instead of waiting for the backoff (the "Retry now" button, `online`). */
	retryNow(): void {
		if (!this.wanted || this.state.value !== 'reconnecting' || this.retryTimer === null) return;
		window.clearTimeout(this.retryTimer);
		this.retryTimer = null;
		void this.open();
	}

	on<T>(type: string, handler: (data: T) => void): () => void {
		let set = this.handlers.get(type);
		if (set === undefined) {
			set = new Set();
			this.handlers.set(type, set);
		}
		set.add(handler as Handler);
		return () => set.delete(handler as Handler);
	}

	onReconnect(hook: () => void): () => void {
		this.reconnectHooks.add(hook);
		return () => this.reconnectHooks.delete(hook);
	}

	/** Send a frame if the connection is open; returns whether it went out. */
	send(type: string, data: Record<string, unknown> = {}): boolean {
		if (this.state.value !== 'open' || this.socket === null) return false;
		this.socket.send(JSON.stringify({ type, data }));
		return true;
	}

	/** Send a frame with a request id and wait for the reply that echoes it. */
	async request(type: string, data: Record<string, unknown> = {}): Promise<ServerFrame> {
		const [reply] = await this.collect(type, data, null);
		return reply!;
	}

	/**
	 * Send a frame with a request id and gather the replies that echo it, up to and
	 * including the first of type `until` (`media:join` answers with several frames).
	 */
	collect(type: string, data: Record<string, unknown>, until: string | null): Promise<ServerFrame[]> {
		if (this.state.value !== 'open' || this.socket === null) {
			return Promise.reject(new RequestFailed('offline', 'Not connected to the server'));
		}
		const requestId = `r${this.nextRequestId++}`;
		const socket = this.socket;
		return new Promise((resolve, reject) => {
			const timer = window.setTimeout(() => {
				this.pending.delete(requestId);
				reject(new RequestFailed('timeout', `No answer to ${type} in time`));
			}, REQUEST_TIMEOUT_MS);
			this.pending.set(requestId, { until, frames: [], resolve, reject, timer });
			socket.send(JSON.stringify({ type, data, request_id: requestId }));
		});
	}

	private async open(forceRefresh = false): Promise<void> {
		this.retryTimer = null;
		this.retryAt.value = null;
		if (this.state.value !== 'reconnecting') this.state.value = 'connecting';
		let token: string;
		try {
			// Repeated failures may be an upgrade refused with 401 (a browser only sees 1006):
			// a new token then, which also finds out whether the session is still valid.
			token = forceRefresh || this.failures >= 3 ? await refreshAccessToken() : await accessToken();
		} catch (error) {
			if (error instanceof SignedOut) {
				this.stop();
				return;
			}
			this.scheduleRetry(); // the refresh itself could not reach the server
			return;
		}
		if (!this.wanted) return;
		const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
		const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
		this.socket = socket;
		socket.onmessage = (event) => this.receive(socket, event.data);
		socket.onclose = (event) => this.closed(socket, event.code);
	}

	private receive(socket: WebSocket, text: unknown): void {
		if (socket !== this.socket || typeof text !== 'string') return;
		let frame: ServerFrame & { connection_id?: string };
		try {
			frame = JSON.parse(text);
		} catch {
			return;
		}
		if (frame.type === 'connected') {
			this.opened(frame.connection_id ?? null);
			return;
		}
		if (frame.type === 'batch') {
			// Events the server held for one tick and sent together (docs/protocol.md, Batches):
			// each is handled as if it had come in a frame of its own, in order.
			const events = (frame.data as { events?: unknown } | undefined)?.events;
			for (const event of Array.isArray(events) ? events : []) this.dispatch(event as ServerFrame);
			return;
		}
		this.dispatch(frame);
	}

	private dispatch(frame: ServerFrame): void {
		if (frame.type === 'pong' && this.pongTimer !== null) {
			window.clearTimeout(this.pongTimer);
			this.pongTimer = null;
		}
		if (frame.request_id !== undefined && this.settle(frame)) return;
		for (const handler of this.handlers.get(frame.type) ?? []) {
			try {
				(handler as (data: unknown) => void)(frame.data ?? {});
			} catch (error) {
				console.warn(`Handling ${frame.type} failed`, error);
			}
		}
	}

	private settle(frame: ServerFrame): boolean {
		const requestId = frame.request_id as string;
		const pending = this.pending.get(requestId);
		if (pending === undefined) return false;
		if (ERROR_TYPES.has(frame.type)) {
			this.pending.delete(requestId);
			window.clearTimeout(pending.timer);
			const data = frame.data as { code?: string; message?: string };
			pending.reject(new RequestFailed(data.code ?? frame.type, data.message ?? 'Request failed'));
			return true;
		}
		pending.frames.push(frame);
		if (pending.until === null || frame.type === pending.until) {
			this.pending.delete(requestId);
			window.clearTimeout(pending.timer);
			pending.resolve(pending.frames);
		}
		return true;
	}

	private opened(connectionId: string | null): void {
		const reopened = this.everOpened;
		this.connectionId = connectionId;
		this.everOpened = true;
		this.failures = 0;
		this.state.value = 'open';
		this.troubled.value = false;
		this.schedulePing();
		if (reopened) {
			for (const hook of this.reconnectHooks) hook();
		}
	}

	private closed(socket: WebSocket, code: number): void {
		if (socket !== this.socket) return;
		this.socket = null;
		this.connectionId = null;
		this.clearTimers();
		this.failPending('the connection was lost');
		if (!this.wanted) return;
		const wasOpen = this.state.value === 'open';
		this.state.value = 'reconnecting';
		if (wasOpen && code === CLOSE_TOKEN_EXPIRED) {
			void this.open(true); // with a new token; nobody needs to know
			return;
		}
		this.troubled.value = true;
		this.scheduleRetry();
	}

	private scheduleRetry(): void {
		this.state.value = 'reconnecting';
		this.troubled.value = true;
		const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.failures);
		const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
		this.failures += 1;
		this.retryAt.value = Date.now() + delay;
		this.retryTimer = window.setTimeout(() => void this.open(), delay);
	}

	private schedulePing(): void {
		this.pingTimer = window.setTimeout(() => {
			if (!this.send('ping')) return;
			// A silent peer (a laptop that slept, a dead NAT mapping): give up and reconnect.
			this.pongTimer = window.setTimeout(() => this.socket?.close(4000, 'no pong'), PONG_WITHIN_MS);
			this.schedulePing();
		}, PING_EVERY_MS);
	}

	private clearTimers(): void {
		for (const timer of [this.retryTimer, this.pingTimer, this.pongTimer]) {
			if (timer !== null) window.clearTimeout(timer);
		}
		this.retryTimer = this.pingTimer = this.pongTimer = null;
		this.retryAt.value = null;
	}

	private failPending(reason: string): void {
		for (const pending of this.pending.values()) {
			window.clearTimeout(pending.timer);
			pending.reject(new RequestFailed('offline', reason));
		}
		this.pending.clear();
	}
}

export const realtime = new RealtimeClient();
