// The workspace's conferences: the list, and which channels have a call going on.
import { computed, signal } from '@preact/signals';
import * as api from '../lib/api';
import { realtime } from '../lib/realtime';
import type { Conference, ConferenceEvent, Id } from '../lib/types';
import { channels, tenant } from './workspace';

/** The open workspace's conferences, newest first; null until loaded. */
export const conferences = signal<Conference[] | null>(null);

/** channel id → the conference in progress there. */
export const liveCalls = computed(() => {
	const live = new Map<Id, Conference>();
	for (const conference of conferences.value ?? []) {
		if (conference.status === 'in_progress' && conference.channel_id !== null && !live.has(conference.channel_id)) {
			live.set(conference.channel_id, conference);
		}
	}
	return live;
});

export async function loadConferences(): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const page = await api.listConferences(open.id);
	if (tenant.value?.id === open.id) conferences.value = page.items;
}

export function forgetConferences(): void {
	conferences.value = null;
}

function replace(conference: Conference): void {
	const list = conferences.value ?? [];
	const rest = list.filter((c) => c.id !== conference.id);
	conferences.value = [conference, ...rest].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
}

/** Create an instant conference (in a channel, or none) and start its media room. */
export async function startCall(subject: string, channelId: Id | null): Promise<Conference> {
	const open = tenant.value;
	if (open === null) throw new Error('No workspace is open');
	const created = await api.createConference(open.id, subject, channelId);
	await api.startConference(open.id, created.id);
	const started = await api.getConference(open.id, created.id);
	replace(started);
	return started;
}

export async function startExisting(conferenceId: Id): Promise<Conference> {
	const open = tenant.value;
	if (open === null) throw new Error('No workspace is open');
	await api.startConference(open.id, conferenceId);
	const started = await api.getConference(open.id, conferenceId);
	replace(started);
	return started;
}

async function refreshOne(conferenceId: Id): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	try {
		replace(await api.getConference(open.id, conferenceId));
	} catch {
		// Gone or no longer visible: the list shows what it had.
	}
}

function announced({ conference_id, channel_id }: ConferenceEvent): void {
	// Events come from the channels of every workspace we are in: only this one's matter.
	if (channels.value.some((c) => c.id === channel_id)) void refreshOne(conference_id);
}

/** Someone joined or left (or was found gone): the count on "Join call (n)" changes. */
function countChanged({ conference_id, participant_count }: ConferenceEvent & { participant_count: number }): void {
	const list = conferences.value;
	const known = list?.find((c) => c.id === conference_id);
	if (list === null || known === undefined || known.participant_count === participant_count) return;
	conferences.value = list.map((c) => (c.id === conference_id ? { ...c, participant_count } : c));
}

realtime.on<ConferenceEvent>('conference:started', announced);
realtime.on<ConferenceEvent & { participant_count: number }>('conference:updated', countChanged);
realtime.on<ConferenceEvent>('conference:ended', announced);
realtime.onReconnect(() => void loadConferences().catch(() => undefined));
