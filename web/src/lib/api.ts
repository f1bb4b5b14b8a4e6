// The REST API (docs/api.md): one function per route the client uses.
import { accessToken, currentRefreshToken, refreshAccessToken, SignedOut } from './session';
import type {
	Attachment,
	AuthResponse,
	Channel,
	ChannelMuted,
	ChannelRead,
	ChannelType,
	Conference,
	Id,
	Message,
	MessageReactions,
	NotificationsRead,
	Page,
	Presence,
	Role,
	SearchResults,
	Tenant,
	TenantMember,
	User,
	UserNotification,
} from './types';

/** The server answered with its error shape `{"error", "message"}`. */
export class ApiError extends Error {
	constructor(
		readonly status: number,
		readonly kind: string,
		message: string,
	) {
		super(message);
		this.name = 'ApiError';
	}
}

/** The server could not be reached at all (it is restarting, or the network is down). */
export class NetworkError extends Error {
	constructor(cause: unknown) {
		super('Cannot reach the server', { cause });
		this.name = 'NetworkError';
	}
}

interface RequestOptions {
	body?: unknown;
	auth?: boolean;
	headers?: Record<string, string>;
}

async function send(method: string, path: string, options: RequestOptions, token: string | null) {
	const headers: Record<string, string> = { ...options.headers };
	if (token !== null) headers.authorization = `Bearer ${token}`;
	if (options.body !== undefined) headers['content-type'] = 'application/json';
	try {
		return await fetch(`/api${path}`, {
			method,
			headers,
			body: options.body === undefined ? null : JSON.stringify(options.body),
		});
	} catch (error) {
		throw new NetworkError(error);
	}
}

async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
	const auth = options.auth ?? true;
	let response = await send(method, path, options, auth ? await accessToken() : null);
	if (auth && response.status === 401) {
		// The token was refused before its time (the server's secret changed, a clock jumped):
		// one refresh and one retry; a refused refresh token signs the user out.
		response = await send(method, path, options, await refreshAccessToken());
		if (response.status === 401) throw new SignedOut();
	}
	const payload: unknown = response.status === 204 ? null : await response.json().catch(() => null);
	if (!response.ok) {
		const error = payload as { error?: string; message?: string } | null;
		throw new ApiError(
			response.status,
			error?.error ?? 'error',
			error?.message ?? `The server answered ${response.status}`,
		);
	}
	return payload as T;
}

const get = <T>(path: string) => request<T>('GET', path);
const post = <T>(path: string, body?: unknown, headers?: Record<string, string>) =>
	request<T>('POST', path, { body, headers });
const put = <T>(path: string, body: unknown) => request<T>('PUT', path, { body });
const del = <T>(path: string) => request<T>('DELETE', path);

function query(params: Record<string, string | number | undefined>): string {
	const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== '');
	return entries.length === 0 ? '' : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)]))}`;
}

// --- auth ---------------------------------------------------------------------------------

export interface Registration {
	email: string;
	username: string;
	display_name: string;
	password: string;
	/** An invitation link's code: the new account joins its workspace. */
	invite_code?: string;
}

export const register = (body: Registration) =>
	request<AuthResponse>('POST', '/auth/register', { body, auth: false });

export const login = (login: string, password: string) =>
	request<AuthResponse>('POST', '/auth/login', {
		body: login.includes('@') ? { email: login, password } : { username: login, password },
		auth: false,
	});

// Ends the session on the server too: its refresh token stops working at once.
export const logout = () =>
	post<{ logged_out: boolean }>('/auth/logout', { refresh_token: currentRefreshToken() });

export const me = () => get<User>('/auth/me');

export interface ProfileChange {
	display_name?: string;
	avatar?: string;
	time_zone?: string;
}

export const updateMe = (change: ProfileChange) => put<User>('/auth/me', change);

export const changePassword = (currentPassword: string, newPassword: string) =>
	put<{ changed: boolean; sessions_ended: number }>('/auth/me/password', {
		current_password: currentPassword,
		new_password: newPassword,
	});

/** Make `picture` the user's avatar; the server keeps a 256 px square of it. */
export async function uploadAvatar(picture: Blob): Promise<User> {
	const token = await accessToken();
	let response: Response;
	try {
		response = await fetch('/api/auth/me/avatar', {
			method: 'PUT',
			headers: { authorization: `Bearer ${token}`, 'content-type': picture.type || 'application/octet-stream' },
			body: picture,
		});
	} catch (error) {
		throw new NetworkError(error);
	}
	const payload = (await response.json().catch(() => null)) as (User & { error?: string; message?: string }) | null;
	if (!response.ok) {
		throw new ApiError(
			response.status,
			payload?.error ?? 'error',
			payload?.message ?? `The server answered ${response.status}`,
		);
	}
	return payload as User;
}

// --- tenants --------------------------------------------------------------------------------

export const listTenants = () => get<Tenant[]>('/tenant');

export const createTenant = (name: string, slug: string) => post<Tenant>('/tenant', { name, slug });

export const getTenant = (tid: Id) => get<Tenant>(`/tenant/${tid}`);

export const listTenantMembers = (tid: Id, page: number) =>
	get<Page<TenantMember>>(`/tenant/${tid}/member${query({ page, per_page: 100 })}`);

export const addTenantMember = (tid: Id, username: string, role: Role = 'member') =>
	post<TenantMember>(`/tenant/${tid}/member`, { username, role });

export const tenantPresence = (tid: Id) => get<Record<Id, Presence>>(`/tenant/${tid}/presence`);

// --- channels -------------------------------------------------------------------------------

export interface NewChannel {
	name: string;
	channel_type: ChannelType;
	parent_id: Id | null;
	is_private: boolean;
	purpose: string | null;
}

export const listChannels = (tid: Id) => get<Channel[]>(`/tenant/${tid}/channel`);

export const exploreChannels = (tid: Id, q: string) =>
	get<Channel[]>(`/tenant/${tid}/channel/explore${query({ q })}`);

export const createChannel = (tid: Id, body: NewChannel) =>
	post<Channel>(`/tenant/${tid}/channel`, body);

export const setMemberRole = (tid: Id, uid: Id, role: Role) =>
	put<TenantMember>(`/tenant/${tid}/member/${uid}`, { role });

export const editChannel = (tid: Id, cid: Id, body: { name?: string; purpose?: string | null }) =>
	put<Channel>(`/tenant/${tid}/channel/${cid}`, body);

export const deleteChannel = (tid: Id, cid: Id) => del<{ deleted: boolean }>(`/tenant/${tid}/channel/${cid}`);

/** Archive (read-only for everyone) or unarchive a channel; answers it as it is now. */
export const setChannelArchived = (tid: Id, cid: Id, archived: boolean) =>
	archived
		? put<Channel>(`/tenant/${tid}/channel/${cid}/archive`, undefined)
		: del<Channel>(`/tenant/${tid}/channel/${cid}/archive`);

export const joinChannel = (tid: Id, cid: Id) =>
	post<{ joined: boolean }>(`/tenant/${tid}/channel/${cid}/join`);

export const leaveChannel = (tid: Id, cid: Id) =>
	post<{ left: boolean }>(`/tenant/${tid}/channel/${cid}/leave`);

/** A direct conversation with `userIds` (we are always in it): found again if it exists. */
export const startDirect = (tid: Id, userIds: Id[]) => post<Channel>(`/tenant/${tid}/dm`, { user_ids: userIds });

// --- search ---------------------------------------------------------------------------------

export const search = (tid: Id, q: string, before?: Id) =>
	get<SearchResults>(`/tenant/${tid}/search${query({ q, before })}`);

// --- messages -------------------------------------------------------------------------------

const messages = (tid: Id, cid: Id) => `/tenant/${tid}/channel/${cid}/message`;

export const listMessages = (tid: Id, cid: Id, perPage: number, before?: Id) =>
	get<Page<Message>>(`${messages(tid, cid)}${query({ per_page: perPage, before })}`);

export interface NewMessage {
	content: string;
	nonce: string;
	referenced_message_id: Id | null;
	thread_id?: Id;
	attachment_ids?: Id[];
}

/** `connectionId` keeps the server from echoing the message back over this tab's socket. */
export const postMessage = (tid: Id, cid: Id, body: NewMessage, connectionId: string | null) =>
	post<Message>(messages(tid, cid), body, connectionId ? { 'x-connection-id': connectionId } : {});

export const editMessage = (tid: Id, cid: Id, mid: Id, content: string) =>
	put<Message>(`${messages(tid, cid)}/${mid}`, { content });

export const deleteMessage = (tid: Id, cid: Id, mid: Id) =>
	del<{ deleted: boolean }>(`${messages(tid, cid)}/${mid}`);

// --- files --------------------------------------------------------------------------------

const files = (tid: Id, cid: Id) => `/tenant/${tid}/channel/${cid}/file`;

function errorOf(xhr: XMLHttpRequest): Error {
	if (xhr.status === 0) return new NetworkError(null);
	try {
		const payload = JSON.parse(xhr.responseText) as { error?: string; message?: string };
		return new ApiError(xhr.status, payload.error ?? 'error', payload.message ?? `The server answered ${xhr.status}`);
	} catch {
		return new ApiError(xhr.status, 'error', `The server answered ${xhr.status}`);
	}
}

/** Upload `file` into the channel; `onProgress` gets the fraction sent (XMLHttpRequest, as
 * fetch cannot tell an upload's progress). Aborted through `signal`. */
export async function uploadFile(
	tid: Id,
	cid: Id,
	file: File,
	onProgress: (fraction: number) => void,
	signal?: AbortSignal,
): Promise<Attachment> {
	const token = await accessToken();
	return new Promise((resolve, reject) => {
		const xhr = new XMLHttpRequest();
		xhr.open('POST', `/api${files(tid, cid)}?name=${encodeURIComponent(file.name || 'pasted')}`);
		xhr.setRequestHeader('authorization', `Bearer ${token}`);
		xhr.setRequestHeader('content-type', file.type || 'application/octet-stream');
		xhr.upload.onprogress = (event) => {
			if (event.lengthComputable) onProgress(event.loaded / event.total);
		};
		xhr.onload = () => {
			if (xhr.status === 201) resolve(JSON.parse(xhr.responseText) as Attachment);
			else reject(errorOf(xhr));
		};
		xhr.onerror = () => reject(new NetworkError(null));
		xhr.onabort = () => reject(new DOMException('Upload cancelled', 'AbortError'));
		signal?.addEventListener('abort', () => xhr.abort());
		xhr.send(file);
	});
}

export const withdrawUpload = (tid: Id, cid: Id, fid: Id) => del<{ deleted: boolean }>(`${files(tid, cid)}/${fid}`);

/** A file's bytes (its `url` or `thumbnail_url`, which start with /api), signed in. */
export async function fetchFile(url: string): Promise<Blob> {
	let response = await fetch(url, { headers: { authorization: `Bearer ${await accessToken()}` } });
	if (response.status === 401) {
		response = await fetch(url, { headers: { authorization: `Bearer ${await refreshAccessToken()}` } });
	}
	if (!response.ok) throw new ApiError(response.status, 'error', `The server answered ${response.status}`);
	return response.blob();
}

const reaction = (tid: Id, cid: Id, mid: Id, emoji: string) =>
	`${messages(tid, cid)}/${mid}/reaction/${encodeURIComponent(emoji)}`;

export const addReaction = (tid: Id, cid: Id, mid: Id, emoji: string) =>
	request<MessageReactions>('PUT', reaction(tid, cid, mid, emoji));

export const removeReaction = (tid: Id, cid: Id, mid: Id, emoji: string) =>
	del<MessageReactions>(reaction(tid, cid, mid, emoji));

export const pinMessage = (tid: Id, cid: Id, mid: Id) =>
	request<Message>('PUT', `${messages(tid, cid)}/${mid}/pin`);

export const unpinMessage = (tid: Id, cid: Id, mid: Id) => del<Message>(`${messages(tid, cid)}/${mid}/pin`);

export const listPins = (tid: Id, cid: Id) => get<Message[]>(`/tenant/${tid}/channel/${cid}/pins`);

export const listThread = (tid: Id, cid: Id, mid: Id) => get<Message[]>(`${messages(tid, cid)}/${mid}/thread`);

interface Following {
	thread_id: Id;
	following: boolean;
}

export const getFollowing = (tid: Id, cid: Id, mid: Id) => get<Following>(`${messages(tid, cid)}/${mid}/follow`);

export const followThread = (tid: Id, cid: Id, mid: Id) =>
	request<Following>('PUT', `${messages(tid, cid)}/${mid}/follow`);

export const unfollowThread = (tid: Id, cid: Id, mid: Id) => del<Following>(`${messages(tid, cid)}/${mid}/follow`);

// --- read markers -----------------------------------------------------------------------------

export const listUnread = (tid: Id) => get<ChannelRead[]>(`/tenant/${tid}/unread`);

/** Move our read marker in `cid` forward to `mid`; answers the channel's counts after it. */
export const markRead = (tid: Id, cid: Id, mid: Id) =>
	put<ChannelRead>(`/tenant/${tid}/channel/${cid}/read`, { message_id: mid });

// --- notifications ----------------------------------------------------------------------------

export interface NotificationPage extends Page<UserNotification> {
	unread_count: number;
}

export const listNotifications = (tid: Id) =>
	get<NotificationPage>(`/tenant/${tid}/notification${query({ page: 1, per_page: 50 })}`);

export const readNotification = (tid: Id, nid: Id) =>
	put<NotificationsRead>(`/tenant/${tid}/notification/${nid}/read`, undefined);

export const readAllNotifications = (tid: Id) =>
	put<NotificationsRead>(`/tenant/${tid}/notification/read`, undefined);

export const listMuted = (tid: Id) => get<Id[]>(`/tenant/${tid}/mute`);

export const muteChannel = (tid: Id, cid: Id) => put<ChannelMuted>(`/tenant/${tid}/channel/${cid}/mute`, undefined);

export const unmuteChannel = (tid: Id, cid: Id) => del<ChannelMuted>(`/tenant/${tid}/channel/${cid}/mute`);

// --- conferences ----------------------------------------------------------------------------

const conferences = (tid: Id) => `/tenant/${tid}/conference`;

export const listConferences = (tid: Id, page = 1) =>
	get<Page<Conference>>(`${conferences(tid)}${query({ page, per_page: 100 })}`);

export const getConference = (tid: Id, conferenceId: Id) =>
	get<Conference>(`${conferences(tid)}/${conferenceId}`);

/** The workspace's conference with this meeting code (join by code); 404 with a message if none. */
export const conferenceByCode = (tid: Id, code: string) =>
	get<Conference>(`${conferences(tid)}/code/${encodeURIComponent(code.trim())}`);

export const createConference = (tid: Id, subject: string, channelId: Id | null) =>
	post<Conference>(conferences(tid), { subject, channel_id: channelId, conference_type: 'instant' });

export const startConference = (tid: Id, conferenceId: Id) =>
	post<{ started: boolean }>(`${conferences(tid)}/${conferenceId}/start`);

export const joinConference = (tid: Id, conferenceId: Id) =>
	post<{ participant_id: Id; joined: boolean }>(`${conferences(tid)}/${conferenceId}/join`);

export const leaveConference = (tid: Id, conferenceId: Id) =>
	post<{ left: boolean }>(`${conferences(tid)}/${conferenceId}/leave`);

export const endConference = (tid: Id, conferenceId: Id) =>
	post<{ ended: boolean }>(`${conferences(tid)}/${conferenceId}/end`);

/** Recording (organizer, owners, admins): one WebM file per producer, listed on the conference. */
export interface RecordingInfo {
	id: Id;
	user_id: Id | null;
	kind: 'audio' | 'video';
	size: number;
	duration_ms: number;
	offset_ms: number;
	created_at: string;
}
export const startRecording = (tid: Id, conferenceId: Id) =>
	post<{ recording: boolean }>(`${conferences(tid)}/${conferenceId}/recording/start`);
export const stopRecording = (tid: Id, conferenceId: Id) =>
	post<{ recording: boolean; recordings: RecordingInfo[] }>(`${conferences(tid)}/${conferenceId}/recording/stop`);
export const listRecordings = (tid: Id, conferenceId: Id) =>
	get<{ recording: boolean; started_by: Id | null; recordings: RecordingInfo[] }>(
		`${conferences(tid)}/${conferenceId}/recording`,
	);

/** Leave while the page is going away: the request outlives the page (`keepalive`). */
export function leaveConferenceOnUnload(tid: Id, conferenceId: Id, token: string | null): void {
	if (token === null) return;
	void fetch(`/api${conferences(tid)}/${conferenceId}/leave`, {
		method: 'POST',
		keepalive: true,
		headers: { authorization: `Bearer ${token}` },
	}).catch(() => undefined);
}

// --- invitations and the sign-up policy ---------------------------------------------------

export type SignupPolicy = 'open' | 'invite' | 'closed';

export interface Invitation {
	id: Id;
	tenant_id: Id;
	code: string;
	url: string;
	created_by: Id;
	created_at: string;
	expires_at: string | null;
	max_uses: number | null;
	uses: number;
	state: 'active' | 'expired' | 'used_up';
}

/** Where an invitation link leads (no sign-in needed); 404 when it is not valid. */
export interface InvitationInfo {
	tenant: { id: Id; name: string; slug: string };
	expires_at: string | null;
	signup: SignupPolicy;
}

export const signupPolicy = () =>
	request<{ policy: SignupPolicy }>('GET', '/auth/signup', { auth: false });

export const invitationInfo = (code: string) =>
	request<InvitationInfo>('GET', `/invitation/${encodeURIComponent(code)}`, { auth: false });

export const acceptInvitation = (code: string) =>
	post<Tenant>(`/invitation/${encodeURIComponent(code)}/accept`);

export const listInvitations = (tid: Id) => get<Invitation[]>(`/tenant/${tid}/invitation`);

export const createInvitation = (tid: Id, expiresInSecs: number | null, maxUses: number | null) =>
	post<Invitation>(`/tenant/${tid}/invitation`, { expires_in_secs: expiresInSecs, max_uses: maxUses });

export const revokeInvitation = (tid: Id, iid: Id) =>
	del<{ revoked: boolean }>(`/tenant/${tid}/invitation/${iid}`);

export const listChannelMembers = (tid: Id, cid: Id) =>
	get<Page<{ user_id: Id; username: string; display_name: string }>>(
		`/tenant/${tid}/channel/${cid}/member${query({ per_page: 100 })}`,
	);

export const addChannelMember = (tid: Id, cid: Id, userId: Id) =>
	post<{ user_id: Id }>(`/tenant/${tid}/channel/${cid}/member`, { user_id: userId });
