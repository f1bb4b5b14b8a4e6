// In the call, beside the video: the participant list (mute state, raised hands, the
// organizer's mute and remove), the channel's chat, the raise-hand button, the network
// indicator and hand on each tile, and joining a call by its meeting code.
// docs/protocol.md ("In the call") describes the messages behind them.
import { signal } from '@preact/signals';
import { useEffect, useState } from 'preact/hooks';
import * as api from '../lib/api';
import type { CallSession, NetworkScore } from '../lib/call';
import { navigate, paths } from '../lib/router';
import { currentUser } from '../lib/session';
import type { Conference, Id } from '../lib/types';
import { activeChannelId, closeChannel, describe, openChannel } from '../state/chat';
import { channels, displayName, members, tenant } from '../state/workspace';
import { Avatar, ErrorText } from './common';
import { Composer, TimelineView, TypingLine } from './ChannelView';

type Panel = 'people' | 'chat';

/** Which side panel is open in the call, if any. */
export const callPanel = signal<Panel | null>(null);

/** The organizer and the workspace's owners and admins moderate (as the server decides). */
export function canModerate(conference: Conference | null): boolean {
	if (conference === null) return false;
	return conference.organizer_id === currentUser.value?.id || tenant.value?.role !== 'member';
}

// --- controls --------------------------------------------------------------------------------

/** Raise hand, People and Chat, for the call's control bar. */
export function InCallButtons({ session }: { session: CallSession }) {
	const me = currentUser.value?.id;
	const raised = me !== undefined && session.hands.value.includes(me);
	const [error, setError] = useState<string | null>(null);
	const toggle = (panel: Panel) => (callPanel.value = callPanel.value === panel ? null : panel);
	const people = new Set([...session.peers.value.values()].map((p) => p.userId));
	if (me !== undefined) people.add(me);
	return (
		<>
			<button
				type="button"
				aria-pressed={raised}
				onClick={() => {
					setError(null);
					session.raiseHand(!raised).catch((err) => setError(describe(err)));
				}}
			>
				<HandIcon /> {raised ? 'Lower hand' : 'Raise hand'}
			</button>
			<button type="button" aria-pressed={callPanel.value === 'people'} onClick={() => toggle('people')}>
				People ({people.size})
			</button>
			<button type="button" aria-pressed={callPanel.value === 'chat'} onClick={() => toggle('chat')}>
				Chat
			</button>
			<ErrorText error={error} />
		</>
	);
}

/** "Alice muted you": until we unmute. */
export function MutedNotice({ session }: { session: CallSession }) {
	const by = session.mutedBy.value;
	if (by === null || session.micOn.value) return null;
	return (
		<p class="muted-notice" role="status">
			{displayName(by)} muted you. You can unmute yourself.
		</p>
	);
}

// --- on each tile ------------------------------------------------------------------------------

/** A raised hand and the network indicator, in a tile's caption. */
export function TileBadges({ session, userId, local }: { session: CallSession; userId: Id; local: boolean }) {
	const raised = session.hands.value.includes(userId);
	const score = session.scoreOf(userId);
	return (
		<>
			{raised && (
				<span class="hand-badge" role="img" aria-label="Hand raised" title="Hand raised">
					<HandIcon />
				</span>
			)}
			{score !== null && <NetworkBars score={score} label={local ? 'Your network' : 'Network'} />}
		</>
	);
}

function quality(score: number): 'good' | 'fair' | 'poor' {
	return score >= 7 ? 'good' : score >= 4 ? 'fair' : 'poor';
}

function NetworkBars({ score, label }: { score: NetworkScore; label: string }) {
	const value = score.score ?? 0;
	const level = quality(value);
	const figures = [
		`${label}: ${level} (${value}/10)`,
		score.uplink !== null ? `sending ${score.uplink}/10, ${score.sendKbps} kbit/s` : null,
		score.downlink !== null ? `receiving ${score.downlink}/10` : null,
		score.rttMs !== null ? `round trip ${score.rttMs} ms` : null,
	].filter(Boolean);
	const bars = level === 'good' ? 3 : level === 'fair' ? 2 : 1;
	return (
		<span
			class={`net-score ${level}`}
			role="img"
			aria-label={`${label}: ${level}`}
			title={figures.join(' · ')}
			data-score={value}
			data-quality={level}
		>
			<svg viewBox="0 0 12 12" width="14" height="14" aria-hidden="true">
				{[0, 1, 2].map((i) => (
					<rect key={i} x={1 + i * 4} y={8 - i * 3} width="2.5" height={4 + i * 3} rx="0.5" opacity={i < bars ? 1 : 0.3} fill="currentColor" />
				))}
			</svg>
		</span>
	);
}

// --- the side panel ------------------------------------------------------------------------------

export function CallSidePanel({ session, conference }: { session: CallSession; conference: Conference | null }) {
	const panel = callPanel.value;
	useEffect(() => () => void (callPanel.value = null), []);
	if (panel === null) return null;
	const title = panel === 'people' ? 'People' : 'Chat';
	return (
		<aside class="call-panel" aria-labelledby="call-panel-title" data-panel={panel}>
			<div class="call-panel-header">
				<h2 id="call-panel-title">{title}</h2>
				<button type="button" class="subtle" aria-label={`Close ${title.toLowerCase()}`} onClick={() => (callPanel.value = null)}>
					×
				</button>
			</div>
			{panel === 'people' ? (
				<ParticipantList session={session} conference={conference} />
			) : (
				<CallChat channelId={conference?.channel_id ?? null} />
			)}
		</aside>
	);
}

interface Person {
	userId: Id;
	name: string;
	micOn: boolean;
	cameraOn: boolean;
	local: boolean;
}

/** Everyone in the room once (a user with two tabs is one person), us first, raised hands next. */
function people(session: CallSession): Person[] {
	const me = currentUser.value!;
	const remotes = [...session.remotes.value.values()];
	const sending = (userId: Id, kind: 'audio' | 'video') =>
		remotes.some((r) => r.userId === userId && r.kind === kind && r.source !== 'screen' && !r.paused);
	const list: Person[] = [
		{
			userId: me.id,
			name: `${me.display_name} (you)`,
			micOn: session.micOn.value,
			cameraOn: session.cameraOn.value && session.camera.value !== null,
			local: true,
		},
	];
	const seen = new Set<Id>([me.id]);
	for (const peer of session.peers.value.values()) {
		if (seen.has(peer.userId)) continue;
		seen.add(peer.userId);
		list.push({
			userId: peer.userId,
			name: members.value.has(peer.userId) ? displayName(peer.userId) : peer.displayName || displayName(peer.userId),
			micOn: sending(peer.userId, 'audio'),
			cameraOn: sending(peer.userId, 'video'),
			local: false,
		});
	}
	const hands = session.hands.value;
	const rank = (p: Person) => (p.local ? -1 : hands.includes(p.userId) ? hands.indexOf(p.userId) : hands.length);
	return list.sort((a, b) => rank(a) - rank(b));
}

function ParticipantList({ session, conference }: { session: CallSession; conference: Conference | null }) {
	const moderator = canModerate(conference);
	const [error, setError] = useState<string | null>(null);
	const act = (action: () => Promise<void>) => {
		setError(null);
		action().catch((err) => setError(describe(err)));
	};
	const hands = session.hands.value;
	return (
		<div class="call-panel-body">
			<ErrorText error={error} />
			<ul class="participant-list" aria-label="Participants">
				{people(session).map((person) => {
					const raised = hands.includes(person.userId);
					const who = person.local ? 'your' : `${person.name}'s`;
					return (
						<li
							key={person.userId}
							class="participant"
							data-user={usernameOf(person.userId)}
							data-mic={person.micOn ? 'on' : 'off'}
							data-camera={person.cameraOn ? 'on' : 'off'}
							data-hand={raised ? 'raised' : 'down'}
						>
							<Avatar name={person.local ? currentUser.value!.display_name : person.name} id={person.userId} size={28} />
							<span class="participant-name">{person.name}</span>
							{raised && (
								<span class="hand-badge" role="img" aria-label="Hand raised" title="Hand raised">
									<HandIcon />
								</span>
							)}
							<span class="participant-state">
								<span role="img" aria-label={person.micOn ? 'Microphone on' : 'Microphone muted'} title={person.micOn ? 'Microphone on' : 'Microphone muted'} class={person.micOn ? 'on' : 'off'}>
									{person.micOn ? <MicIcon /> : <MicOffIcon />}
								</span>
								<span role="img" aria-label={person.cameraOn ? 'Camera on' : 'Camera off'} title={person.cameraOn ? 'Camera on' : 'Camera off'} class={person.cameraOn ? 'on' : 'off'}>
									{person.cameraOn ? <CameraIcon /> : <CameraOffIcon />}
								</span>
							</span>
							{moderator && !person.local && (
								<span class="participant-actions">
									{raised && (
										<button type="button" class="subtle" onClick={() => act(() => session.lowerHandOf(person.userId))}>
											Lower {who} hand
										</button>
									)}
									{person.micOn && (
										<button type="button" class="subtle" aria-label={`Mute ${person.name}`} onClick={() => act(() => session.muteParticipant(person.userId))}>
											Mute
										</button>
									)}
									<button type="button" class="subtle danger-text" aria-label={`Remove ${person.name}`} onClick={() => act(() => session.removeParticipant(person.userId))}>
										Remove
									</button>
								</span>
							)}
						</li>
					);
				})}
			</ul>
		</div>
	);
}

function usernameOf(userId: Id): string {
	if (userId === currentUser.value?.id) return currentUser.value.username;
	return members.value.get(userId)?.username ?? userId;
}

/** The conference's channel, live, with the channel view's own timeline and composer. */
function CallChat({ channelId }: { channelId: Id | null }) {
	const channel = channels.value.find((c) => c.id === channelId);
	useEffect(() => {
		if (channelId === null) return;
		void openChannel(channelId);
		return () => {
			if (activeChannelId.value === channelId) closeChannel();
		};
	}, [channelId]);
	if (channelId === null) {
		return <p class="call-panel-body muted">This call was not started in a channel, so it has no chat.</p>;
	}
	if (channel === undefined) {
		return <p class="call-panel-body muted">You cannot see this call's channel.</p>;
	}
	return (
		<div class="call-panel-body call-chat">
			<TimelineView channel={channel} onReply={() => undefined} />
			<TypingLine channelId={channel.id} />
			{channel.is_member ? (
				<Composer channel={channel} replyTo={null} onCancelReply={() => undefined} />
			) : (
				<p class="muted">Join #{channel.name} to write here.</p>
			)}
		</div>
	);
}

// --- joining by code ---------------------------------------------------------------------------

/** "Join with a code": the meeting code resolved in this workspace, then the call. */
export function JoinByCode() {
	const open = tenant.value!;
	const [code, setCode] = useState('');
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);
	const join = async (event: Event) => {
		event.preventDefault();
		setBusy(true);
		setError(null);
		try {
			const conference = await api.conferenceByCode(open.id, code);
			if (conference.status === 'ended') {
				setError(`The meeting ${conference.meeting_code} (${conference.subject}) has ended.`);
			} else {
				navigate(paths.call(open.id, conference.id));
			}
		} catch (err) {
			setError(describe(err));
		} finally {
			setBusy(false);
		}
	};
	return (
		<form class="join-by-code" onSubmit={join}>
			<label>
				Join with a code
				<input
					name="meeting-code"
					placeholder="123-456-789"
					inputMode="numeric"
					autoComplete="off"
					value={code}
					required
					maxLength={20}
					onInput={(e) => setCode(e.currentTarget.value)}
				/>
			</label>
			<button type="submit" disabled={busy || code.trim() === ''}>
				Join meeting
			</button>
			<ErrorText error={error} />
		</form>
	);
}

// --- icons ---------------------------------------------------------------------------------------

function HandIcon() {
	return (
		<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
			<path
				fill="currentColor"
				d="M21 7a1.5 1.5 0 0 0-3 0v5h-1V4.5a1.5 1.5 0 0 0-3 0V11h-1V3.5a1.5 1.5 0 0 0-3 0V11H9V5.5a1.5 1.5 0 0 0-3 0v9.3l-2.1-2.2a1.6 1.6 0 0 0-2.3 2.2l4.6 5.3A6 6 0 0 0 10.7 22H15a6 6 0 0 0 6-6z"
			/>
		</svg>
	);
}

function MicIcon() {
	return (
		<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
			<path fill="currentColor" d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9z" />
		</svg>
	);
}

function MicOffIcon() {
	return (
		<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
			<path fill="currentColor" d="M19 11h-2a5 5 0 0 1-.4 2l1.5 1.5A7 7 0 0 0 19 11zM15 11V5a3 3 0 0 0-5.9-.8L15 10zM4.3 3 3 4.3l6 6V11a3 3 0 0 0 4.5 2.6l1.6 1.6A5 5 0 0 1 7 11H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 3.3-1.3l3.4 3.4 1.3-1.3z" />
		</svg>
	);
}

function CameraIcon() {
	return (
		<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
			<path fill="currentColor" d="M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11z" />
		</svg>
	);
}

function CameraOffIcon() {
	return (
		<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
			<path fill="currentColor" d="M21 6.5l-4 4V7a1 1 0 0 0-1-1H9.8L21 17.2zM3.3 2 2 3.3 4.7 6H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12c.2 0 .4-.1.6-.2l3.1 3.2 1.3-1.3z" />
		</svg>
	);
}
