// Conferences: a channel's call button, the list of calls, and the call view.
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import * as api from '../lib/api';
import type { CallSession, Peer, RemoteMedia } from '../lib/call';
import { navigate, paths } from '../lib/router';
import { currentUser } from '../lib/session';
import type { Channel, Conference, Id } from '../lib/types';
import { conferences, liveCalls, loadConferences, startCall, startExisting } from '../state/calls';
import { describe } from '../state/chat';
import { channelLabel, channels, displayName, members, tenant } from '../state/workspace';
import { Avatar, ErrorText, formatDay, formatTime } from './common';
import { MembersButton } from './MemberList';
import { CallSidePanel, InCallButtons, JoinByCode, MutedNotice, TileBadges } from './callPanels';
import { Stage } from './stage';
import type { Box } from '../lib/layout';
import { DebugOverlay, useTileView } from './tileMedia';

// --- starting and joining ------------------------------------------------------------------

export function CallButton({ channel }: { channel: Channel }) {
	const open = tenant.value!;
	const live = liveCalls.value.get(channel.id);
	const [busy, setBusy] = useState(false);
	const [error, setError] = useState<string | null>(null);

	useEffect(() => {
		if (conferences.value === null) void loadConferences().catch(() => undefined);
	}, [open.id]);

	if (live) {
		return (
			<button type="button" class="primary call-live" onClick={() => navigate(paths.call(open.id, live.id))}>
				Join call{live.participant_count > 0 ? ` (${live.participant_count})` : ''}
			</button>
		);
	}
	const start = async () => {
		setBusy(true);
		setError(null);
		try {
			const conference = await startCall(channelLabel(channel), channel.id);
			navigate(paths.call(open.id, conference.id));
		} catch (err) {
			setError(describe(err));
			setBusy(false);
		}
	};
	return (
		<>
			<button type="button" onClick={() => void start()} disabled={busy}>
				Start call
			</button>
			<ErrorText error={error} />
		</>
	);
}

const STATUS_LABELS: Record<Conference['status'], string> = {
	scheduled: 'Not started',
	in_progress: 'In progress',
	ended: 'Ended',
};

export function CallsPage({ header }: { header: JSX.Element }) {
	const open = tenant.value!;
	const [subject, setSubject] = useState('');
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);

	useEffect(() => {
		void loadConferences().catch((err) => setError(describe(err)));
	}, [open.id]);

	const create = async (event: Event) => {
		event.preventDefault();
		setBusy(true);
		setError(null);
		try {
			const conference = await startCall(subject.trim(), null);
			navigate(paths.call(open.id, conference.id));
		} catch (err) {
			setError(describe(err));
			setBusy(false);
		}
	};

	const list = conferences.value;
	return (
		<section class="explore-view" aria-labelledby="calls-title">
			<header class="main-header">
				{header}
				<h1 id="calls-title">Calls</h1>
				<div class="header-actions">
					<MembersButton />
				</div>
			</header>
			<div class="scroll-body">
				<form class="new-call" onSubmit={create}>
					<label>
						<span class="visually-hidden">Subject of the new call</span>
						<input
							name="subject"
							placeholder="Subject, e.g. Weekly sync"
							value={subject}
							required
							maxLength={200}
							onInput={(e) => setSubject(e.currentTarget.value)}
						/>
					</label>
					<button type="submit" class="primary" disabled={busy}>
						Start a new call
					</button>
				</form>
				<ErrorText error={error} />
				<JoinByCode />
				{list === null ? (
					<p class="muted">Loading…</p>
				) : list.length === 0 ? (
					<p class="muted">No calls yet. Start one here or from a channel.</p>
				) : (
					<ul class="explore-list">
						{list.map((conference) => (
							<ConferenceRow key={conference.id} conference={conference} />
						))}
					</ul>
				)}
			</div>
		</section>
	);
}

function ConferenceRow({ conference }: { conference: Conference }) {
	const open = tenant.value!;
	const channel = channels.value.find((c) => c.id === conference.channel_id);
	const [error, setError] = useState<string | null>(null);
	const go = async () => {
		try {
			if (conference.status === 'scheduled') await startExisting(conference.id);
			navigate(paths.call(open.id, conference.id));
		} catch (err) {
			setError(describe(err));
		}
	};
	return (
		<li class="explore-item" data-status={conference.status}>
			<div>
				<strong>{conference.subject}</strong>
				<p class="muted">
					{STATUS_LABELS[conference.status]}
					{channel ? ` · #${channel.name}` : ''} · {formatDay(conference.created_at)} {formatTime(conference.created_at)}
					{conference.status === 'in_progress' ? ` · ${conference.participant_count} in the call` : ''} · code{' '}
					{conference.meeting_code}
				</p>
				<ErrorText error={error} />
			</div>
			{conference.status !== 'ended' && (
				<button type="button" class="primary" onClick={() => void go()}>
					{conference.status === 'scheduled' ? 'Start' : 'Join'}
				</button>
			)}
		</li>
	);
}

// --- the call view -----------------------------------------------------------------------------

export function CallPage({ conferenceId, header }: { conferenceId: Id; header: JSX.Element }) {
	const open = tenant.value!;
	const [conference, setConference] = useState<Conference | null>(null);
	const [session, setSession] = useState<CallSession | null>(null);
	const [error, setError] = useState<string | null>(null);

	useEffect(() => {
		let current: CallSession | null = null;
		let cancelled = false;
		(async () => {
			try {
				let found = await api.getConference(open.id, conferenceId);
				if (found.status === 'scheduled') found = await startExisting(conferenceId);
				if (cancelled) return;
				setConference(found);
				if (found.status !== 'in_progress') return;
				// mediasoup-client is loaded only when a call is joined.
				const { CallSession } = await import('../lib/call');
				if (cancelled) return;
				current = new CallSession(open.id, conferenceId);
				setSession(current);
				await current.join();
			} catch (err) {
				if (!cancelled) setError(describe(err));
			}
		})();
		return () => {
			cancelled = true;
			void current?.leave();
		};
	}, [open.id, conferenceId]);

	const title = conference?.subject ?? 'Call';
	return (
		<section class="call-view" aria-labelledby="call-title">
			<header class="main-header">
				{header}
				<div class="channel-heading">
					<h1 id="call-title">{title}</h1>
					{conference && <p class="purpose muted">Meeting code {conference.meeting_code}</p>}
				</div>
				<div class="header-actions">
					<MembersButton />
				</div>
			</header>
			<ErrorText error={error} />
			{conference?.status === 'ended' && <CallOver message="This call has ended." />}
			{session && <CallBody session={session} conference={conference} />}
		</section>
	);
}

function CallOver({ message }: { message: string }) {
	const open = tenant.value!;
	return (
		<div class="call-over">
			<p>{message}</p>
			<button type="button" onClick={() => navigate(paths.calls(open.id))}>
				Back to calls
			</button>
		</div>
	);
}

function CallBody({ session, conference }: { session: CallSession; conference: Conference | null }) {
	const phase = session.phase.value;
	if (phase === 'failed') return <CallOver message={`Could not join the call: ${session.error.value}`} />;
	if (phase === 'ended') return <CallOver message={session.error.value ?? 'You left the call.'} />;
	const back = () => {
		const channel = conference?.channel_id;
		const open = tenant.value!;
		navigate(channel ? paths.channel(open.id, channel) : paths.calls(open.id));
	};
	return (
		<>
			{phase === 'joining' && (
				<p class="muted center" role="status">
					Joining…
				</p>
			)}
			{phase === 'joined' && session.reconnecting.value && (
				<p class="muted center call-reconnecting" role="status">
					Reconnecting to the call…
				</p>
			)}
			<RecordingIndicator session={session} />
			<VideoGrid session={session} />
			<MutedNotice session={session} />
			<CallControls session={session} onLeave={back} canEnd={canEnd(conference)} />
			<CallSidePanel session={session} conference={conference} />
		</>
	);
}

const RECORD = 'M12 7a5 5 0 1 0 0 10 5 5 0 0 0 0-10z';

/** "Recording" while the call is recorded, for everyone in it; asked once on joining. */
function RecordingIndicator({ session }: { session: CallSession }) {
	useEffect(() => {
		api
			.listRecordings(session.tenantId, session.conferenceId)
			.then((state) => (session.recording.value = state.recording))
			.catch(() => undefined); // the events keep it right from here on
	}, [session]);
	if (!session.recording.value) return null;
	return (
		<p class="recording-indicator" role="status">
			<span class="recording-dot" aria-hidden="true" /> Recording
		</p>
	);
}

/** The organizer and the workspace's owners and admins may end a call for everyone. */
function canEnd(conference: Conference | null): boolean {
	if (conference === null) return false;
	return conference.organizer_id === currentUser.value?.id || tenant.value?.role !== 'member';
}

/** Names the dominant speaker (the one in the large tile). */
function ActiveSpeaker({ session }: { session: CallSession }) {
	const speaker = session.activeSpeaker.value;
	if (speaker === null) return null;
	const name = speaker === currentUser.value?.id ? 'You are' : `${nameOf(speaker, peerNames(session.peers.value))} is`;
	return (
		<p class="active-speaker muted" aria-live="polite" data-user={usernameOf(speaker)}>
			{name} speaking
		</p>
	);
}

interface TileSpec {
	key: string;
	userId: Id;
	label: string;
	stream: MediaStream | null;
	videoOff: boolean;
	muted: boolean;
	local: boolean;
	screen: boolean;
	producerId?: string;
	/** The dominant speaker's tile: first and large. */
	dominant?: boolean;
	/** Heard in the last interval: outlined. */
	speaking?: boolean;
	/** Pinned by this user: in the large tile (or first in a grid), its video always received. */
	pinned?: boolean;
	/** A camera not received now (not among the last N speakers): its avatar instead. */
	videoPaused?: boolean;
}

/**
 * Own preview first, then one tile per remote video producer (a shared screen labelled
 * "<name> (screen)"), and an avatar tile for each other user in the room without video:
 * audio only, or no media at all.
 */
function tiles(session: CallSession): TileSpec[] {
	const me = currentUser.value!;
	const muted = session.mutedUsers.value;
	const list: TileSpec[] = [];
	const camera = session.cameraStream.value;
	list.push({
		key: 'local-camera',
		userId: me.id,
		label: `${me.display_name} (you)`,
		stream: camera,
		videoOff: camera === null || !session.cameraOn.value,
		muted: !session.micOn.value,
		local: true,
		screen: false,
	});
	const screen = session.screenStream.value;
	if (screen) {
		list.push({
			key: 'local-screen',
			userId: me.id,
			label: 'Your screen',
			stream: screen,
			videoOff: false,
			muted: true,
			local: true,
			screen: true,
		});
	}
	const remotes = [...session.remotes.value.values()];
	const withVideo = new Set(remotes.filter((r) => r.kind === 'video').map((r) => r.userId));
	const names = peerNames(session.peers.value);
	for (const remote of remotes) {
		if (remote.kind === 'video') {
			list.push(remoteTile(remote, muted.has(remote.userId), names));
		} else if (!withVideo.has(remote.userId)) {
			withVideo.add(remote.userId); // one avatar tile per audio-only user
			list.push({ ...remoteTile(remote, muted.has(remote.userId), names), stream: null, videoOff: true });
		}
	}
	for (const peer of session.peers.value.values()) {
		if (withVideo.has(peer.userId) || peer.userId === me.id) continue;
		withVideo.add(peer.userId); // in the room without any media: an avatar
		list.push({
			key: `peer-${peer.userId}`,
			userId: peer.userId,
			label: nameOf(peer.userId, names),
			stream: null,
			videoOff: true,
			muted: muted.has(peer.userId),
			local: false,
			screen: false,
		});
	}
	return list;
}

/** user id → the display name the server gave with the participant (members may not know it). */
function peerNames(peers: ReadonlyMap<string, Peer>): Map<Id, string> {
	const names = new Map<Id, string>();
	for (const peer of peers.values()) if (peer.displayName) names.set(peer.userId, peer.displayName);
	return names;
}

function nameOf(userId: Id, names: Map<Id, string>): string {
	return members.value.has(userId) ? displayName(userId) : (names.get(userId) ?? displayName(userId));
}

/** The caption of a remote producer's tile: a shared screen says so. */
function remoteLabel(name: string, source: RemoteMedia['source']): string {
	return source === 'screen' ? `${name} (screen)` : name;
}

function remoteTile(remote: RemoteMedia, muted: boolean, names: Map<Id, string>): TileSpec {
	const screen = remote.kind === 'video' && remote.source === 'screen';
	return {
		key: remote.producerId,
		userId: remote.userId,
		label: remoteLabel(nameOf(remote.userId, names), screen ? 'screen' : null),
		stream: remote.stream,
		videoOff: remote.paused || remote.stream === null,
		muted: screen ? false : muted,
		local: false,
		screen,
		producerId: remote.producerId,
	};
}

/**
 * The order tiles are laid out in: pinned ones, shared screens (others' before ours), the
 * dominant speaker's camera (or avatar), our camera, then everyone else; with more people
 * than get video (last N), those by how recently they spoke, so the first page shows the
 * videos received.
 */
function ordered(list: TileSpec[], session: CallSession): TileSpec[] {
	const speaker = session.activeSpeaker.value;
	const pins = [...session.pinned.value];
	const group = (t: TileSpec): number => {
		if (t.pinned) return 0;
		if (t.screen) return t.local ? 2 : 1;
		if (!t.local && t.userId === speaker) return 3;
		return t.local ? 4 : 5;
	};
	const others = list.filter((t) => group(t) === 5).length;
	const byRecency = others > session.lastN.value;
	const rank = (t: TileSpec): number => {
		if (t.pinned) return pins.indexOf(t.key);
		return byRecency && group(t) === 5 ? session.speakerRank(t.userId) : 0;
	};
	return list
		.map((tile, index) => ({ tile: { ...tile, dominant: group(tile) === 3 }, index }))
		.sort((a, b) => group(a.tile) - group(b.tile) || rank(a.tile) - rank(b.tile) || a.index - b.index)
		.map(({ tile }) => tile);
}

function VideoGrid({ session }: { session: CallSession }) {
	const speaking = session.speaking.value;
	const pinned = session.pinned.value;
	const wanted = session.videoWanted.value;
	const list = ordered(
		tiles(session).map((tile) => ({
			...tile,
			pinned: pinned.has(tile.key),
			speaking: speaking.has(tile.userId) && !tile.screen && !tile.muted,
			videoPaused: tile.producerId !== undefined && !tile.videoOff && !wanted.has(tile.producerId),
		})),
		session,
	);
	const audio = [...session.remotes.value.values()].filter((r) => r.kind === 'audio' && r.stream);
	return (
		<Stage
			tiles={list}
			status={<ActiveSpeaker session={session} />}
			renderTile={(tile, box, large) => <Tile key={tile.key} tile={tile} session={session} box={box} large={large} />}
		>
			{audio.map((remote) => (
				<AudioSink key={remote.producerId} remote={remote} />
			))}
		</Stage>
	);
}

function usernameOf(userId: Id): string {
	if (userId === currentUser.value?.id) return currentUser.value.username;
	return members.value.get(userId)?.username ?? userId;
}

function Tile(props: { tile: TileSpec; session: CallSession; box: Box; large: boolean }) {
	const { tile, session, box } = props;
	const video = useRef<HTMLVideoElement>(null);
	const figure = useRef<HTMLElement>(null);
	useTileView(session, tile.local ? undefined : tile.producerId, figure);
	useEffect(() => {
		const element = video.current;
		if (element === null) return;
		if (element.srcObject !== tile.stream) {
			element.srcObject = tile.stream;
			if (tile.stream) void element.play().catch(() => undefined);
		}
	}, [tile.stream]);
	const noVideo = tile.videoOff || tile.videoPaused;
	return (
		<figure
			ref={figure}
			class={`tile${tile.local ? ' local' : ''}${tile.screen ? ' screen' : ''}${tile.videoOff ? ' video-off' : ''}${tile.videoPaused ? ' video-paused' : ''}${tile.dominant ? ' dominant' : ''}${tile.speaking ? ' speaking' : ''}${props.large ? ' large' : ''}`}
			style={{ left: `${box.x}px`, top: `${box.y}px`, width: `${box.width}px`, height: `${box.height}px` }}
			data-speaking={tile.speaking ? 'true' : 'false'}
			data-dominant={tile.dominant ? 'true' : 'false'}
			data-user={usernameOf(tile.userId)}
			data-local={tile.local ? 'true' : 'false'}
			data-muted={tile.muted ? 'true' : 'false'}
			data-producer={tile.producerId}
			data-pinned={tile.pinned ? 'true' : 'false'}
		>
			<video ref={video} autoplay playsInline muted />
			{!tile.local && <DebugOverlay session={session} producerId={tile.producerId} video={video} />}
			{noVideo && (
				<div class="tile-avatar">
					<Avatar name={tile.label.replace(/ \((you|screen)\)$/, '')} id={tile.userId} size={box.height >= 140 ? 72 : 40} />
				</div>
			)}
			{!tile.local && (
				<button
					type="button"
					class="tile-pin"
					aria-pressed={tile.pinned ? 'true' : 'false'}
					aria-label={`Pin ${tile.label}`}
					title={tile.pinned ? 'Unpin' : 'Pin: keep this tile large and its video on'}
					onClick={() => session.togglePin(tile.key)}
				>
					<PinIcon />
				</button>
			)}
			<figcaption>
				{tile.muted && (
					<span class="muted-icon" role="img" aria-label="Microphone muted" title="Microphone muted">
						<MicOffIcon />
					</span>
				)}
				<span>{tile.label}</span>
				{!tile.screen && <TileBadges session={session} userId={tile.userId} local={tile.local} />}
			</figcaption>
		</figure>
	);
}

/** A remote microphone, played; named by its user and producer like the video tiles. */
function AudioSink({ remote }: { remote: RemoteMedia }) {
	const stream = remote.stream!;
	const audio = useRef<HTMLAudioElement>(null);
	useEffect(() => {
		const element = audio.current;
		if (element === null) return;
		element.srcObject = stream;
		void element.play().catch(() => undefined);
	}, [stream]);
	return (
		<audio ref={audio} autoplay data-user={usernameOf(remote.userId)} data-producer={remote.producerId} />
	);
}

function CallControls(props: { session: CallSession; onLeave: () => void; canEnd: boolean }) {
	const { session, onLeave } = props;
	const [devicesOpen, setDevicesOpen] = useState(false);
	const [error, setError] = useState<string | null>(null);
	const attempt = (action: () => Promise<void>) => {
		setError(null);
		action().catch((err) => setError(describe(err)));
	};
	const micOn = session.micOn.value;
	const cameraOn = session.cameraOn.value;
	const sharing = session.screen.value !== null;
	const canShare = 'getDisplayMedia' in navigator.mediaDevices;
	return (
		<div class="call-controls" role="toolbar" aria-label="Call controls">
			<button type="button" aria-pressed={!micOn} onClick={() => attempt(() => session.setMic(!micOn))}>
				{micOn ? <Icon d={MIC} /> : <MicOffIcon />} {micOn ? 'Mute' : 'Unmute'}
			</button>
			<button type="button" aria-pressed={!cameraOn} onClick={() => attempt(() => session.setCamera(!cameraOn))}>
				<Icon d={cameraOn ? CAMERA : CAMERA_OFF} /> {cameraOn ? 'Stop camera' : 'Start camera'}
			</button>
			{canShare && (
				<button
					type="button"
					aria-pressed={sharing}
					onClick={() => attempt(() => (sharing ? session.stopScreenShare() : session.startScreenShare()))}
				>
					<Icon d={SCREEN} /> {sharing ? 'Stop sharing' : 'Share screen'}
				</button>
			)}
			<button type="button" aria-expanded={devicesOpen} onClick={() => setDevicesOpen(!devicesOpen)}>
				<Icon d={DEVICES} /> Devices
			</button>
			<InCallButtons session={session} />
			<button
				type="button"
				class="danger"
				onClick={() => {
					void session.leave();
					onLeave();
				}}
			>
				<Icon d={LEAVE} /> Leave call
			</button>
			{props.canEnd && (
				<button
					type="button"
					aria-pressed={session.recording.value}
					onClick={() =>
						attempt(async () => {
							const recording = session.recording.value;
							const call = recording ? api.stopRecording : api.startRecording;
							await call(session.tenantId, session.conferenceId);
							session.recording.value = !recording;
						})
					}
				>
					<Icon d={RECORD} /> {session.recording.value ? 'Stop recording' : 'Record'}
				</button>
			)}
			{props.canEnd && (
				<button
					type="button"
					class="danger"
					onClick={() =>
						attempt(async () => {
							await api.endConference(session.tenantId, session.conferenceId);
							onLeave();
						})
					}
				>
					<Icon d={END} /> End for everyone
				</button>
			)}
			{devicesOpen && <DevicePicker session={session} onError={setError} />}
			<ErrorText error={error} />
		</div>
	);
}

function DevicePicker({ session, onError }: { session: CallSession; onError: (e: string) => void }) {
	const { audioInputs, videoInputs } = session.devices.value;
	const choose = (kind: 'audio' | 'video', id: string) =>
		session.chooseDevice(kind, id).catch((err) => onError(describe(err)));
	return (
		<div class="device-picker">
			<label>
				Microphone
				<select
					name="microphone"
					value={session.micDeviceId.value ?? ''}
					disabled={audioInputs.length === 0}
					onChange={(e) => void choose('audio', e.currentTarget.value)}
				>
					{audioInputs.map((d, i) => (
						<option key={d.deviceId} value={d.deviceId}>
							{d.label || `Microphone ${i + 1}`}
						</option>
					))}
				</select>
			</label>
			<label>
				Camera
				<select
					name="camera"
					value={session.cameraDeviceId.value ?? ''}
					disabled={videoInputs.length === 0}
					onChange={(e) => void choose('video', e.currentTarget.value)}
				>
					{videoInputs.map((d, i) => (
						<option key={d.deviceId} value={d.deviceId}>
							{d.label || `Camera ${i + 1}`}
						</option>
					))}
				</select>
			</label>
		</div>
	);
}

// The control bar's icons (24x24 paths, drawn for Roomler), beside each button's words.
const MIC = 'M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9z';
const CAMERA = 'M4 6h11a1 1 0 0 1 1 1v3.5l4-3v9l-4-3V17a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1z';
const CAMERA_OFF = 'M3.3 2 2 3.3 4.7 6H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h11c.3 0 .5-.1.7-.3l4 4 1.3-1.3zM20 7.5l-4 3V7a1 1 0 0 0-1-1H9.8L20 16.2z';
const SCREEN = 'M3 4h18a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1h-7v2h3v2H7v-2h3v-2H3a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zm1 2v9h16V6z';
const DEVICES = 'M4 6h9v2H4zm13 0h3v2h-3zm-2-2h2v6h-2zM4 16h3v2H4zm7 0h9v2h-9zm-2-2h2v6H9z';
const LEAVE = 'M10 4h9a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1h-9v-2h8V6h-8zm-1 4 1.4 1.4L8.8 11H16v2H8.8l1.6 1.6L9 16l-4-4z';
const END = 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm3.6 5 1.4 1.4-3.6 3.6 3.6 3.6-1.4 1.4-3.6-3.6L8.4 17 7 15.6l3.6-3.6L7 8.4 8.4 7l3.6 3.6z';

function Icon({ d }: { d: string }) {
	return (
		<svg class="button-icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
			<path fill="currentColor" d={d} />
		</svg>
	);
}

function PinIcon() {
	return (
		<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
			<path fill="currentColor" d="M16 3H8v2h1v5.6L6.5 13v2H11v6l1 1 1-1v-6h4.5v-2L15 10.6V5h1z" />
		</svg>
	);
}

function MicOffIcon() {
	return (
		<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
			<path
				fill="currentColor"
				d="M19 11h-1.7c0 .74-.16 1.43-.43 2.05l1.23 1.23c.56-.98.9-2.09.9-3.28zm-4.02.17c0-.06.02-.11.02-.17V5c0-1.66-1.34-3-3-3S9 3.34 9 5v.18l5.98 5.99zM4.27 3 3 4.27l6.01 6.01V11c0 1.66 1.33 3 2.99 3 .22 0 .44-.03.65-.08l1.66 1.66c-.71.33-1.5.52-2.31.52-2.76 0-5.3-2.1-5.3-5.1H5c0 3.41 2.72 6.23 6 6.72V21h2v-3.28c.91-.13 1.77-.45 2.54-.9L19.73 21 21 19.73 4.27 3z"
			/>
		</svg>
	);
}
