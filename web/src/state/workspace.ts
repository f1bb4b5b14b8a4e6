// The open workspace (tenant): its channels, members and their presence. Changes others
// make arrive over the WebSocket (tenant:joined, tenant:member_added|removed,
// channel:created) and are applied here, so lists update without a reload.
import { computed, signal } from '@preact/signals';
import * as api from '../lib/api';
import { realtime } from '../lib/realtime';
import { navigate, paths } from '../lib/router';
import { currentUser } from '../lib/session';
import type {
	Channel,
	ChannelCreated,
	ChannelRemoved,
	ChannelUpdated,
	Id,
	MemberAdded,
	MemberRemoved,
	MemberUpdated,
	Presence,
	PresenceUpdate,
	Tenant,
	TenantJoined,
	TenantMember,
} from '../lib/types';

const LAST_TENANT_KEY = 'roomler.lastTenant';

/** The user's tenants; null until loaded. */
export const tenants = signal<Tenant[] | null>(null);
export const tenant = signal<Tenant | null>(null);
export const channels = signal<Channel[]>([]);
export const members = signal<ReadonlyMap<Id, TenantMember>>(new Map());
/** What each member's presence looks like to us (`invisible` shows as `offline`). */
export const presence = signal<Readonly<Record<Id, Presence>>>({});
/** The presence we chose ourselves, `invisible` included. */
export const myPresence = signal<Presence>('online');

export const canManageMembers = computed(
	() => tenant.value !== null && tenant.value.role !== 'member',
);

export function displayName(userId: Id): string {
	if (userId === currentUser.value?.id) return currentUser.value.display_name;
	return members.value.get(userId)?.display_name ?? 'Unknown user';
}

export function lastTenantId(): string | null {
	return localStorage.getItem(LAST_TENANT_KEY);
}

export async function loadTenants(): Promise<Tenant[]> {
	const list = await api.listTenants();
	tenants.value = list;
	const open = tenant.value;
	if (open !== null) tenant.value = list.find((t) => t.id === open.id) ?? open;
	return list;
}

export async function createTenant(name: string, slug: string): Promise<Tenant> {
	const created = await api.createTenant(name, slug);
	// Every workspace starts with a place to talk.
	await api.createChannel(created.id, {
		name: 'general',
		channel_type: 'text',
		parent_id: null,
		is_private: false,
		purpose: 'Everything and anything',
	});
	addTenant(created);
	return created;
}

/** Make `tid` the open workspace, loading what the sidebar and member list show. */
export async function openTenant(tid: Id): Promise<void> {
	if (tenant.value?.id === tid) return;
	tenant.value = null;
	channels.value = [];
	members.value = new Map();
	presence.value = {};
	const [info] = await Promise.all([api.getTenant(tid), refreshChannels(tid), refreshMembers(tid)]);
	tenant.value = info;
	localStorage.setItem(LAST_TENANT_KEY, tid);
	await refreshPresence();
}

export function closeTenant(): void {
	tenant.value = null;
	channels.value = [];
	members.value = new Map();
	presence.value = {};
}

export async function refreshChannels(tid: Id | undefined = tenant.value?.id): Promise<void> {
	if (tid === undefined) return;
	channels.value = await api.listChannels(tid);
}

export async function refreshMembers(tid: Id | undefined = tenant.value?.id): Promise<void> {
	if (tid === undefined) return;
	const all = new Map<Id, TenantMember>();
	for (let page = 1; ; page += 1) {
		const result = await api.listTenantMembers(tid, page);
		for (const member of result.items) all.set(member.user_id, member);
		if (page >= result.total_pages) break;
	}
	members.value = all;
}

export async function refreshPresence(): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const seen = await api.tenantPresence(open.id);
	const me = currentUser.value?.id;
	// Our own entry is our choice while connected; before the socket opens it says offline.
	if (me !== undefined && realtime.state.value === 'open' && seen[me] !== undefined) {
		myPresence.value = seen[me];
	}
	presence.value = seen;
}

export async function addMember(username: string): Promise<TenantMember> {
	const open = tenant.value;
	if (open === null) throw new Error('No workspace is open');
	const member = await api.addTenantMember(open.id, username);
	members.value = new Map(members.value).set(member.user_id, member);
	await refreshPresence();
	return member;
}

export function choosePresence(choice: Presence): boolean {
	const sent = realtime.send('presence:update', { presence: choice });
	if (sent) myPresence.value = choice;
	return sent;
}

export function presenceOf(userId: Id): Presence {
	if (userId === currentUser.value?.id) {
		return realtime.state.value === 'open' ? myPresence.value : 'offline';
	}
	return presence.value[userId] ?? 'offline';
}

/** Add a tenant to the list (once: the server may tell us too). */
function addTenant(joined: Tenant): void {
	const list = tenants.value;
	if (list !== null && !list.some((t) => t.id === joined.id)) tenants.value = [...list, joined];
}

/** The server's channel order: each channel right after its parent, siblings by path. */
function comparePaths(a: Channel, b: Channel): number {
	const left = a.path.split('.');
	const right = b.path.split('.');
	for (let i = 0; i < Math.min(left.length, right.length); i += 1) {
		if (left[i] !== right[i]) return left[i]! < right[i]! ? -1 : 1;
	}
	return left.length - right.length;
}

export function addChannel(channel: Channel): void {
	if (channels.value.some((c) => c.id === channel.id)) return;
	channels.value = [...channels.value, channel].sort(comparePaths);
}

/** Start (or reopen: the server finds an existing one) a direct conversation and show it. */
export async function openDirect(userIds: Id[]): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const conversation = await api.startDirect(open.id, userIds);
	addChannel(conversation);
	navigate(paths.channel(open.id, conversation.id));
}

export function updateChannel(channel: Channel): void {
	const list = channels.value;
	const index = list.findIndex((c) => c.id === channel.id);
	channels.value =
		index === -1 ? list : [...list.slice(0, index), channel, ...list.slice(index + 1)];
}

realtime.on<PresenceUpdate>('presence:update', ({ user_id, presence: state }) => {
	if (user_id === currentUser.value?.id) myPresence.value = state;
	presence.value = { ...presence.value, [user_id]: state };
});

realtime.on<TenantJoined>('tenant:joined', ({ tenant: joined }) => addTenant(joined));

realtime.on<MemberAdded>('tenant:member_added', ({ tenant_id, member }) => {
	if (tenant.value?.id !== tenant_id) return;
	members.value = new Map(members.value).set(member.user_id, member);
	void refreshPresence().catch(() => undefined); // what the newcomer looks like to us
});

realtime.on<MemberRemoved>('tenant:member_removed', ({ tenant_id, user_id }) => {
	if (user_id === currentUser.value?.id) {
		if (tenants.value !== null) tenants.value = tenants.value.filter((t) => t.id !== tenant_id);
		if (tenant.value?.id === tenant_id) {
			closeTenant();
			navigate('/tenants', { replace: true });
		}
		return;
	}
	if (tenant.value?.id !== tenant_id || !members.value.has(user_id)) return;
	const next = new Map(members.value);
	next.delete(user_id);
	members.value = next;
});

realtime.on<MemberUpdated>('tenant:member_updated', ({ tenant_id, member }) => {
	if (member.user_id === currentUser.value?.id) {
		// Our own role: what the app lets us do changes with it.
		const mine = (t: Tenant) => (t.id === tenant_id ? { ...t, role: member.role } : t);
		if (tenants.value !== null) tenants.value = tenants.value.map(mine);
		if (tenant.value?.id === tenant_id) tenant.value = mine(tenant.value);
	}
	if (tenant.value?.id !== tenant_id || !members.value.has(member.user_id)) return;
	const known = members.value.get(member.user_id)!;
	members.value = new Map(members.value).set(member.user_id, { ...known, role: member.role });
});

/** Change a member's role (owners and admins; the server holds the rules). */
export async function setMemberRole(userId: Id, role: TenantMember['role']): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const member = await api.setMemberRole(open.id, userId, role);
	const known = members.value.get(userId);
	if (known) members.value = new Map(members.value).set(userId, { ...known, role: member.role });
}

realtime.on<ChannelUpdated>('channel:updated', (changed) => {
	const { tenant_id, channel_id, name, purpose, is_private, archived, archived_at, paths: moved } = changed;
	if (tenant.value?.id !== tenant_id) return;
	channels.value = channels.value
		.map((c) => {
			const path = moved[c.id];
			if (c.id === channel_id) return { ...c, name, purpose, is_private, archived, archived_at, path: path ?? c.path };
			return path !== undefined ? { ...c, path } : c;
		})
		.sort(comparePaths);
});

realtime.on<ChannelRemoved>('channel:removed', ({ tenant_id, channel_ids }) => {
	if (tenant.value?.id !== tenant_id) return;
	channels.value = channels.value.filter((c) => !channel_ids.includes(c.id));
	if (channel_ids.some((cid) => window.location.pathname === paths.channel(tenant_id, cid))) {
		navigate(paths.explore(tenant_id), { replace: true });
	}
});

/** Rename a channel or set its topic; the others hear `channel:updated`. */
export async function editChannel(cid: Id, body: { name?: string; purpose?: string | null }): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const changed = await api.editChannel(open.id, cid, body);
	const known = channels.value.find((c) => c.id === cid);
	if (known) updateChannel({ ...changed, is_member: known.is_member });
}

/** Archive or unarchive a channel; the others hear `channel:updated`. */
export async function setArchived(cid: Id, archived: boolean): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const changed = await api.setChannelArchived(open.id, cid, archived);
	const known = channels.value.find((c) => c.id === cid);
	if (known) updateChannel({ ...changed, is_member: known.is_member });
}

/** Whether we may write in the channel: post, react, pin, call (a member, not archived). */
export function canWrite(channel: Channel): boolean {
	return channel.is_member && !channel.archived;
}

export async function deleteChannel(cid: Id): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const prefix = `${channels.value.find((c) => c.id === cid)?.path ?? cid}.`;
	await api.deleteChannel(open.id, cid);
	// Its sub-channels go with it.
	channels.value = channels.value.filter((c) => c.id !== cid && !c.path.startsWith(prefix));
	navigate(paths.explore(open.id), { replace: true });
}

realtime.on<ChannelCreated>('channel:created', ({ tenant_id, channel }) => {
	if (tenant.value?.id === tenant_id) addChannel(channel);
});

realtime.onReconnect(() => {
	void loadTenants().catch(() => undefined);
	void refreshChannels().catch(() => undefined);
	void refreshMembers().catch(() => undefined);
});

// The socket opening (first time or again) is when our own presence becomes known, and
// the moment to read everyone's afresh after a drop.
realtime.state.subscribe((state) => {
	if (state === 'open') void refreshPresence().catch(() => undefined);
});

/** How a channel is named on screen: `#name`, or a direct conversation's other members. */
export function channelLabel(channel: Channel): string {
	if (channel.channel_type !== 'direct') return `#${channel.name}`;
	const me = currentUser.value?.id;
	const others = (channel.member_ids ?? []).filter((id) => id !== me);
	return others.length === 0 ? displayName(me ?? '') : others.map(displayName).join(', ');
}
