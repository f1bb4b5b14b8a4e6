// One browser's part in a conference: local tracks, mediasoup-client transports, and the
// remote producers it consumes. The signaling is `media:*` over the app's WebSocket
// (src/roomler/conference/signaling.py):
//
//   POST .../join                      the participant record (REST)
//   media:join           →             ← media:router_capabilities, media:transport_created
//                                      ← media:new_producer (one per producer already there)
//                                      ← media:participants (everyone in the room, media or not)
//                                      peers get media:peer_joined
//   media:connect_transport →          ← media:transport_connected   (first use of a transport)
//   media:produce        →             ← media:produce_result {id}
//   media:consume        →             ← media:consumer_created {type: simple|simulcast|svc}
//   media:set_preferred_layers →       ← media:preferred_layers_set   (a tile's size changed)
//   media:consumer_pause|resume →      ← media:consumer_paused|resumed (a tile hidden/shown)
//                                      ← media:consumer_layers_changed, media:consumer_score
//   media:producer_pause|resume →      peers get media:producer_paused|resumed
//   media:leave          →             peers get media:producer_closed, media:peer_left
//
// Handlers for peer events are registered before `media:join` is sent, and producers
// announced before the receive transport exists wait in a queue, so none is missed.
// If the WebSocket reconnects (a new connection id), the server has already closed our
// transports: we join again with fresh transports and the same local tracks (producers
// are made with `stopTracks: false`, so closing a transport never ends a track), naming
// our previous connection (`previous_connection_id`) so the others see the same
// participant come back (`media:peer_reconnected`), not a leave and a join. When ICE
// itself goes `disconnected`/`failed` (the network changed), we ask for new ICE
// credentials (`media:restart_ice`) and restart ICE on that transport; if it does not
// connect again in time, we leave and join again on the same socket. When the server
// hosting the call shuts down (`media:room_closed {reason: "server_shutdown"}`) or dies
// (`"node_lost"`, several nodes), we join again the same way: the call goes on elsewhere.
import { computed, effect, signal } from '@preact/signals';
import { Device, type types } from 'mediasoup-client';
import * as api from './api';
import { exposeForDebug } from './debug';
import { realtime, type ServerFrame } from './realtime';
import { currentAccessToken, currentUser } from './session';
import {
	CAMERA_CONSTRAINTS,
	SCREEN_CONSTRAINTS,
	SCREEN_ENCODINGS,
	cameraEncodings,
	layerForHeight,
} from './simulcast';
import type { Id } from './types';

export type CallPhase = 'joining' | 'joined' | 'ended' | 'failed';

// How long ICE may stay `disconnected` before we restart it (Chrome often recovers alone).
const ICE_DISCONNECTED_GRACE_MS = 2_000;
// After an ICE restart, how long to wait for `connected` before rejoining instead.
const ICE_RESTART_TIMEOUT_MS = 10_000;
// Videos received at once besides pinned tiles and screen shares (last N), when the server
// does not say (`video_last_n` in media:transport_created, ROOMLER__CONFERENCE__VIDEO_LAST_N).
export const DEFAULT_LAST_N = 9;
// Rejoin attempts after a reconnect, and the pause between them (the server may be starting).
const REJOIN_ATTEMPTS = 5;
const REJOIN_PAUSE_MS = 1_000;
// `media:room_closed` reasons after which the conference goes on on another node (or
// after the server's restart): its host shut down or died. We join again, no click.
const MOVING = new Set(['server_shutdown', 'node_lost']);
type Kind = 'audio' | 'video';
/** What a producer carries, as its `app_data.source` says (we send it; others may not). */
export type Source = 'camera' | 'mic' | 'screen';

export interface RemoteMedia {
	producerId: string;
	userId: Id;
	kind: Kind;
	source: Source | null;
	stream: MediaStream | null;
	paused: boolean;
}

/** Another connection in the room, whether or not it sends media. */
export interface Peer {
	connectionId: string;
	userId: Id;
	displayName: string;
}

interface Announced {
	producerId: string;
	userId: Id;
	kind: Kind;
	source: Source | null;
}

interface PeerData {
	user_id: Id;
	display_name?: string;
	connection_id: string;
	previous_connection_id?: string;
}

const SOURCES: readonly string[] = ['camera', 'mic', 'screen'];

/** The producer's `app_data.source`, when it is one we know. */
export function sourceOf(appData: unknown): Source | null {
	if (typeof appData !== 'object' || appData === null) return null;
	const source = (appData as { source?: unknown }).source;
	return typeof source === 'string' && SOURCES.includes(source) ? (source as Source) : null;
}

interface TransportInfo {
	id: string;
	ice_parameters: types.IceParameters;
	ice_candidates: types.IceCandidate[];
	dtls_parameters: types.DtlsParameters;
}

/** What the SFU says it sends us of one remote video (the debug overlay shows it). */
export interface Received {
	spatialLayer: number | null;
	temporalLayer: number | null;
	score: number | null;
}

/** How a remote video's tile is shown, for the layer and pause it asks the SFU for. */
export interface TileView {
	height: number;
	visible: boolean;
}

interface ConsumerState {
	consumer: types.Consumer;
	type: string;
	/** Encodings the producer sends (1 for a simple consumer). */
	layers: number;
	preferred: number | null;
	hidden: boolean;
}

/** One participant connection's network quality (`media:score`, 0..10). */
export interface NetworkScore {
	userId: Id;
	connectionId: string;
	score: number | null;
	uplink: number | null;
	downlink: number | null;
	rttMs: number | null;
	sendKbps: number;
}

interface ScoreData {
	user_id: Id;
	connection_id: string;
	score: number | null;
	uplink: number | null;
	downlink: number | null;
	rtt_ms: number | null;
	send_kbps: number;
}

export interface DeviceChoice {
	audioInputs: MediaDeviceInfo[];
	videoInputs: MediaDeviceInfo[];
}

const VIDEO_CONSTRAINTS = CAMERA_CONSTRAINTS;

export class CallSession {
	readonly phase = signal<CallPhase>('joining');
	readonly error = signal<string | null>(null);
	/** Joining again after the WebSocket came back, or restarting ICE. */
	readonly reconnecting = signal(false);
	/** The dominant speaker's user id (`media:active_speaker`), kept through silences. */
	readonly activeSpeaker = signal<Id | null>(null);
	/** Users heard in the last interval (`media:audio_levels`). */
	readonly speaking = signal<ReadonlySet<Id>>(new Set());
	/** Users whose hand is up, in the order they raised it (`media:hand_raised`). */
	readonly hands = signal<readonly Id[]>([]);
	/** Network quality by connection id, ours included (`media:score`). */
	readonly scores = signal<ReadonlyMap<string, NetworkScore>>(new Map());
	/** Whether the call is being recorded (`media:recording_started|stopped`, or asked on join). */
	readonly recording = signal(false);
	/** Who last muted us (`media:muted`), until we unmute. */
	readonly mutedBy = signal<Id | null>(null);
	/** Users by how recently they were heard, the latest first. */
	readonly recentSpeakers = signal<readonly Id[]>([]);
	/** How many cameras we receive at once (last N), besides pinned tiles and screens. */
	readonly lastN = signal(DEFAULT_LAST_N);
	/** Tiles this user pinned (keys: a remote video's producer id, or `peer-<user>`). */
	readonly pinned = signal<ReadonlySet<string>>(new Set());
	/** ICE restarts done on this page (shown to tests through `window.roomlerCall`). */
	readonly iceRestarts = signal(0);
	readonly remotes = signal<ReadonlyMap<string, RemoteMedia>>(new Map());
	/** Per remote video producer: the layers and score the SFU reports for our consumer. */
	readonly received = signal<ReadonlyMap<string, Received>>(new Map());
	/** The other connections in the room, by connection id (media:participants, peer_joined). */
	readonly peers = signal<ReadonlyMap<string, Peer>>(new Map());
	readonly camera = signal<MediaStreamTrack | null>(null);
	readonly screen = signal<MediaStreamTrack | null>(null);
	/** Streams for the local previews, made once per track so a `<video>` keeps playing. */
	readonly cameraStream = computed(() => (this.camera.value ? new MediaStream([this.camera.value]) : null));
	readonly screenStream = computed(() => (this.screen.value ? new MediaStream([this.screen.value]) : null));
	readonly micOn = signal(false);
	readonly cameraOn = signal(false);
	readonly devices = signal<DeviceChoice>({ audioInputs: [], videoInputs: [] });
	readonly micDeviceId = signal<string | null>(null);
	readonly cameraDeviceId = signal<string | null>(null);
	/**
	 * The remote videos we want the SFU to send (last N): every shared screen, every pinned
	 * video, and the cameras of the N people heard most recently (before anyone has spoken,
	 * the first N to arrive). The others' consumers stay paused; so do those whose tile is
	 * not on screen (another page, scrolled away, the tab hidden).
	 */
	readonly videoWanted = computed(() => {
		const wanted = new Set<string>();
		const pinned = this.pinned.value;
		const cameras: RemoteMedia[] = [];
		for (const remote of this.remotes.value.values()) {
			if (remote.kind !== 'video') continue;
			if (remote.source === 'screen' || pinned.has(remote.producerId)) wanted.add(remote.producerId);
			else cameras.push(remote);
		}
		const rank = new Map(this.recentSpeakers.value.map((user, index) => [user, index]));
		const last = (user: Id) => rank.get(user) ?? Number.MAX_SAFE_INTEGER;
		cameras.sort((a, b) => last(a.userId) - last(b.userId)); // stable: arrival order within
		for (const camera of cameras.slice(0, Math.max(0, this.lastN.value))) wanted.add(camera.producerId);
		return wanted;
	});
	/** Users whose microphone is paused (muted), as their producers tell. */
	readonly mutedUsers = computed(() => {
		const muted = new Set<Id>();
		const talking = new Set<Id>();
		for (const remote of this.remotes.value.values()) {
			if (remote.kind !== 'audio') continue;
			(remote.paused ? muted : talking).add(remote.userId);
		}
		for (const user of talking) muted.delete(user);
		return muted;
	});

	private mic: MediaStreamTrack | null = null;
	private device: Device | null = null;
	private sendTransport: types.Transport | null = null;
	private recvTransport: types.Transport | null = null;
	private producers: { audio?: types.Producer; video?: types.Producer; screen?: types.Producer } = {};
	private consumers = new Map<string, ConsumerState>();
	/** Tile views reported before their consumer existed, applied once it does. */
	private views = new Map<string, TileView>();
	private queued: Announced[] = [];
	private unsubscribe: (() => void)[] = [];
	private left = false;
	/** The connection we are in the room with; named when we rejoin on a new one. */
	private joinedAs: string | null = null;
	private rejoining: Promise<void> | null = null;
	private iceTimers = new Map<string, number>();
	private unexpose: () => void = () => undefined;
	/** Send transports a screen producer is being made on. */
	private screenProducing = new WeakSet<types.Transport>();
	/** Pauses and resumes consumers as the wanted videos change. */
	private stopWanting: () => void = () => undefined;

	constructor(
		readonly tenantId: Id,
		readonly conferenceId: Id,
	) {}

	// --- joining ------------------------------------------------------------------------------

	async join(): Promise<void> {
		this.unexpose = exposeForDebug('roomlerCall', this); // the browser tests' handle
		this.listen();
		this.stopWanting = effect(() => {
			const wanted = this.videoWanted.value;
			for (const producerId of this.consumers.keys()) void this.applyView(producerId, wanted);
		});
		window.addEventListener('pagehide', this.onPageHide);
		try {
			await api.joinConference(this.tenantId, this.conferenceId);
			await this.openLocalMedia();
			await this.connectMedia();
			if (!this.left) this.phase.value = 'joined';
		} catch (error) {
			if (this.left) return;
			this.error.value = error instanceof Error ? error.message : String(error);
			this.phase.value = 'failed';
			this.teardown();
		}
	}

	private listen(): void {
		const on = <T>(type: string, handler: (data: T) => void) =>
			this.unsubscribe.push(realtime.on<T>(type, (data) => !this.left && handler(data)));
		on<{ producer_id: string; user_id: Id; kind: Kind; app_data?: unknown }>('media:new_producer', (data) =>
			this.producerAnnounced({
				producerId: data.producer_id,
				userId: data.user_id,
				kind: data.kind,
				source: sourceOf(data.app_data),
			}),
		);
		on<{ conference_id: Id; participants: PeerData[]; raised_hands?: Id[] }>('media:participants', (data) => {
			if (data.conference_id !== this.conferenceId) return;
			this.addPeers(data.participants);
			if (data.raised_hands) this.hands.value = data.raised_hands;
		});
		on<{ conference_id: Id; user_id: Id; raised: boolean }>('media:hand_raised', (data) => {
			if (data.conference_id === this.conferenceId) this.setHand(data.user_id, data.raised);
		});
		on<{ conference_id: Id; kind: Kind; producer_ids: string[]; by_user_id: Id }>('media:muted', (data) => {
			if (data.conference_id === this.conferenceId) void this.mutedByOrganizer(data.kind, data.producer_ids, data.by_user_id);
		});
		on<{ conference_id: Id }>('media:recording_started', (data) => {
			if (data.conference_id === this.conferenceId) this.recording.value = true;
		});
		on<{ conference_id: Id }>('media:recording_stopped', (data) => {
			if (data.conference_id === this.conferenceId) this.recording.value = false;
		});
		on<{ conference_id: Id; scores: ScoreData[] }>('media:score', (data) => {
			if (data.conference_id === this.conferenceId) this.setScores(data.scores);
		});
		on<PeerData & { conference_id: Id }>('media:peer_joined', (data) => {
			if (data.conference_id === this.conferenceId) this.addPeers([data]);
		});
		on<PeerData & { conference_id: Id }>('media:peer_reconnected', (data) => {
			if (data.conference_id !== this.conferenceId) return;
			if (data.previous_connection_id) this.dropPeer(data.user_id, data.previous_connection_id);
			this.addPeers([data]);
		});
		on<{ conference_id: Id; user_id: Id; connection_id?: string }>('media:peer_left', (data) => {
			if (data.conference_id === this.conferenceId) this.dropPeer(data.user_id, data.connection_id);
		});
		on<{ conference_id: Id; user_id: Id }>('media:active_speaker', (data) => {
			if (data.conference_id !== this.conferenceId) return;
			this.activeSpeaker.value = data.user_id;
			this.heard([data.user_id]);
		});
		on<{ conference_id: Id; levels: { user_id: Id }[] }>('media:audio_levels', (data) => {
			if (data.conference_id !== this.conferenceId) return;
			this.speaking.value = new Set(data.levels.map((l) => l.user_id));
			this.heard(data.levels.map((l) => l.user_id)); // loudest first
		});
		on<{ producer_id: string }>('media:producer_closed', ({ producer_id }) => this.dropRemote(producer_id));
		on<{ producer_id: string }>('media:producer_paused', ({ producer_id }) => this.setPaused(producer_id, true));
		on<{ producer_id: string }>('media:producer_resumed', ({ producer_id }) =>
			this.setPaused(producer_id, false),
		);
		on<{ consumer_id: string; spatial_layer: number | null; temporal_layer: number | null }>(
			'media:consumer_layers_changed',
			(data) => this.updateReceived(data.consumer_id, { spatialLayer: data.spatial_layer, temporalLayer: data.temporal_layer }),
		);
		on<{ consumer_id: string; score: number }>('media:consumer_score', (data) =>
			this.updateReceived(data.consumer_id, { score: data.score }),
		);
		on<{ conference_id: Id; reason: string }>('media:room_closed', ({ conference_id, reason }) => {
			if (conference_id !== this.conferenceId) return;
			if (MOVING.has(reason)) {
				// The call goes on elsewhere: join again (the socket may be about to close
				// with 1001 too; the reconnect then joins, naming this connection).
				void this.rejoin();
				return;
			}
			this.error.value =
				reason === 'ended'
					? 'The call has ended.'
					: reason === 'removed'
						? 'The organizer removed you from this call.'
						: 'The media server stopped this call.';
			this.phase.value = 'ended';
			this.teardown();
		});
		this.unsubscribe.push(realtime.onReconnect(() => void this.rejoin()));
	}

	private async openLocalMedia(): Promise<void> {
		let stream: MediaStream | null = null;
		for (const constraints of [
			{ audio: true, video: VIDEO_CONSTRAINTS },
			{ audio: true, video: false },
			{ audio: false, video: VIDEO_CONSTRAINTS },
		]) {
			try {
				stream = await navigator.mediaDevices.getUserMedia(constraints);
				break;
			} catch {
				// No such device, or permission refused: try with less.
			}
		}
		if (this.left) {
			stream?.getTracks().forEach((t) => t.stop());
			return;
		}
		this.mic = stream?.getAudioTracks()[0] ?? null;
		this.camera.value = stream?.getVideoTracks()[0] ?? null;
		this.micOn.value = this.mic !== null;
		this.cameraOn.value = this.camera.value !== null;
		this.micDeviceId.value = this.mic?.getSettings().deviceId ?? null;
		this.cameraDeviceId.value = this.camera.value?.getSettings().deviceId ?? null;
		await this.refreshDevices();
	}

	private async connectMedia(previousConnectionId: string | null = null): Promise<void> {
		const join: Record<string, unknown> = { conference_id: this.conferenceId };
		if (previousConnectionId !== null) join.previous_connection_id = previousConnectionId;
		const frames = await realtime.collect('media:join', join, 'media:transport_created');
		this.joinedAs = realtime.connectionId;
		const capabilities = frameData<{ rtp_capabilities: types.RtpCapabilities }>(frames, 'media:router_capabilities');
		const created = frameData<{
			send_transport: TransportInfo;
			recv_transport: TransportInfo;
			ice_servers?: RTCIceServer[];
			video_last_n?: number;
		}>(frames, 'media:transport_created');
		if (typeof created.video_last_n === 'number') this.lastN.value = created.video_last_n;
		if (this.device === null) {
			const device = await Device.factory();
			await device.load({ routerRtpCapabilities: capabilities.rtp_capabilities });
			this.device = device;
		}
		this.sendTransport = this.device.createSendTransport(this.transportOptions(created.send_transport, created.ice_servers));
		this.recvTransport = this.device.createRecvTransport(this.transportOptions(created.recv_transport, created.ice_servers));
		this.wireTransport(this.sendTransport);
		this.wireTransport(this.recvTransport);
		this.sendTransport.on('produce', ({ kind, rtpParameters, appData }, done, fail) => {
			this.signal('media:produce', { kind, rtp_parameters: rtpParameters, app_data: appData })
				.then((reply) => done({ id: (reply.data as { id: string }).id }))
				.catch(fail);
		});
		const waiting = this.queued;
		this.queued = [];
		await Promise.all([
			...waiting.map((p) => this.consume(p)),
			this.produceLocal(),
		]);
	}

	private transportOptions(info: TransportInfo, iceServers: RTCIceServer[] | undefined): types.TransportOptions {
		return {
			id: info.id,
			iceParameters: info.ice_parameters,
			iceCandidates: info.ice_candidates,
			dtlsParameters: info.dtls_parameters,
			iceServers: iceServers ?? [],
		};
	}

	private wireTransport(transport: types.Transport): void {
		transport.on('connect', ({ dtlsParameters }, done, fail) => {
			this.signal('media:connect_transport', { transport_id: transport.id, dtls_parameters: dtlsParameters })
				.then(() => done())
				.catch(fail);
		});
		transport.on('connectionstatechange', (state) => this.iceStateChanged(transport, state));
	}

	// --- the media path breaking ------------------------------------------------------------

	private iceStateChanged(transport: types.Transport, state: string): void {
		if (this.left || transport.closed) return;
		const pending = this.iceTimers.get(transport.id);
		if (pending !== undefined) window.clearTimeout(pending);
		this.iceTimers.delete(transport.id);
		if (state === 'failed') {
			void this.restartIce(transport);
		} else if (state === 'disconnected') {
			this.iceTimers.set(
				transport.id,
				window.setTimeout(() => void this.restartIce(transport), ICE_DISCONNECTED_GRACE_MS),
			);
		} else if (state === 'connected' || state === 'completed') {
			this.reconnecting.value = this.rejoining !== null;
		}
	}

	/**
	 * New ICE credentials from the SFU (`media:restart_ice`) and an ICE restart on this
	 * transport; if it is not connected again in time, leave and join again.
	 */
	async restartIce(transport: types.Transport | null = this.recvTransport): Promise<void> {
		if (transport === null || this.left || transport.closed || realtime.state.value !== 'open') return;
		this.reconnecting.value = true;
		try {
			const reply = await this.signal('media:restart_ice', { transport_id: transport.id });
			const { ice_parameters } = reply.data as { ice_parameters: types.IceParameters };
			await transport.restartIce({ iceParameters: ice_parameters });
			this.iceRestarts.value += 1;
		} catch (error) {
			console.warn('ICE restart failed; joining again', error);
			await this.rejoin();
			return;
		}
		const checkLater = window.setTimeout(() => {
			this.iceTimers.delete(transport.id);
			const state = transport.connectionState;
			if (!transport.closed && state !== 'connected') void this.rejoin();
		}, ICE_RESTART_TIMEOUT_MS);
		this.iceTimers.set(transport.id, checkLater);
	}

	private async produceLocal(): Promise<void> {
		const transport = this.sendTransport!;
		if (this.mic !== null) {
			this.producers.audio = await transport.produce({ track: this.mic, stopTracks: false, appData: { source: 'mic' } });
			if (!this.micOn.value) await this.pauseProducer(this.producers.audio);
		}
		if (this.camera.value !== null) {
			this.producers.video = await transport.produce({
				track: this.camera.value,
				stopTracks: false,
				encodings: cameraEncodings(this.camera.value),
				codecOptions: { videoGoogleStartBitrate: 1000 },
				appData: { source: 'camera' },
			});
			if (!this.cameraOn.value) await this.pauseProducer(this.producers.video);
		}
		await this.produceScreen(transport);
	}

	/**
	 * Produce the shared screen on `transport`, once: a share started while joining would
	 * otherwise be produced both by the join and by the share button.
	 */
	private async produceScreen(transport: types.Transport): Promise<void> {
		const track = this.screen.value;
		if (track === null || this.producers.screen !== undefined || this.screenProducing.has(transport)) return;
		this.screenProducing.add(transport);
		try {
			const producer = await transport.produce({
				track,
				stopTracks: false,
				encodings: SCREEN_ENCODINGS.map((e) => ({ ...e })),
				appData: { source: 'screen' },
			});
			if (this.screen.value === track && this.sendTransport === transport) {
				this.producers.screen = producer;
			} else {
				producer.close(); // stopped (or the transport replaced) meanwhile
				await this.signal('media:producer_close', { producer_id: producer.id }).catch(() => undefined);
			}
		} finally {
			this.screenProducing.delete(transport);
		}
	}

	private signal(type: string, data: Record<string, unknown>): Promise<ServerFrame> {
		return realtime.request(type, { conference_id: this.conferenceId, ...data });
	}

	// --- remote producers -----------------------------------------------------------------

	private producerAnnounced(announced: Announced): void {
		if (this.recvTransport === null) {
			this.queued.push(announced);
			return;
		}
		void this.consume(announced);
	}

	private async consume(announced: Announced): Promise<void> {
		const { producerId, kind } = announced;
		if (this.remotes.value.has(producerId) || this.device === null || this.recvTransport === null) return;
		this.updateRemote({ ...announced, stream: null, paused: false });
		try {
			// Video starts paused at the SFU: it is resumed if its tile is shown and wanted.
			const reply = await this.signal('media:consume', {
				producer_id: producerId,
				rtp_capabilities: this.device.recvRtpCapabilities,
				paused: kind === 'video',
			});
			const created = reply.data as {
				id: string;
				producer_id: string;
				kind: Kind;
				type?: string;
				rtp_parameters: types.RtpParameters;
				producer_paused: boolean;
			};
			const consumer = await this.recvTransport.consume({
				id: created.id,
				producerId: created.producer_id,
				kind: created.kind,
				rtpParameters: created.rtp_parameters,
			});
			if (!this.remotes.value.has(producerId) || this.left) {
				consumer.close(); // it closed while we were setting it up
				return;
			}
			if (kind === 'video') consumer.pause();
			this.consumers.set(producerId, {
				consumer,
				type: created.type ?? 'simple',
				layers: simulcastLayers(created.rtp_parameters),
				preferred: null,
				hidden: kind === 'video',
			});
			const current = this.remotes.value.get(producerId)!;
			this.updateRemote({ ...current, stream: new MediaStream([consumer.track]), paused: created.producer_paused });
			// Resumed (with a fresh keyframe from the SFU) if its tile is shown and wanted.
			if (kind === 'video') void this.applyView(producerId);
		} catch (error) {
			// The producer went away meanwhile (or belongs to a room we are not in).
			console.warn(`Could not receive producer ${producerId}`, error);
			this.dropRemote(producerId);
		}
	}

	private updateRemote(remote: RemoteMedia): void {
		this.remotes.value = new Map(this.remotes.value).set(remote.producerId, remote);
	}

	private dropRemote(producerId: string): void {
		if (this.pinned.value.has(producerId)) this.togglePin(producerId);
		this.consumers.get(producerId)?.consumer.close();
		this.consumers.delete(producerId);
		this.views.delete(producerId);
		if (this.received.value.has(producerId)) {
			const received = new Map(this.received.value);
			received.delete(producerId);
			this.received.value = received;
		}
		this.queued = this.queued.filter((p) => p.producerId !== producerId);
		if (!this.remotes.value.has(producerId)) return;
		const next = new Map(this.remotes.value);
		next.delete(producerId);
		this.remotes.value = next;
	}

	// --- what each tile receives -------------------------------------------------------------

	/**
	 * A remote video's tile was resized, shown or hidden (or taken off the stage: another
	 * page): ask the SFU for the layer that suits its height (simulcast only), and pause the
	 * consumer while nobody can see it or it is not among the videos wanted (last N).
	 */
	async setTileView(producerId: string, view: TileView): Promise<void> {
		if (!this.remotes.value.has(producerId)) return;
		this.views.set(producerId, view);
		await this.applyView(producerId);
	}

	private async applyView(producerId: string, wanted = this.videoWanted.peek()): Promise<void> {
		const state = this.consumers.get(producerId);
		if (state === undefined || this.left || state.consumer.kind !== 'video') return;
		const consumerId = state.consumer.id;
		const view = this.views.get(producerId);
		const show = view !== undefined && view.visible && wanted.has(producerId);
		if (show === state.hidden) {
			state.hidden = !show;
			if (state.hidden) state.consumer.pause();
			else state.consumer.resume();
			await this.signal(state.hidden ? 'media:consumer_pause' : 'media:consumer_resume', {
				consumer_id: consumerId,
			}).catch(() => undefined);
		}
		if (view === undefined || (state.type !== 'simulcast' && state.type !== 'svc') || state.hidden || view.height <= 0) return;
		const layer = layerForHeight(view.height, window.devicePixelRatio || 1, state.layers);
		if (layer === state.preferred) return;
		state.preferred = layer;
		await this.signal('media:set_preferred_layers', { consumer_id: consumerId, spatial_layer: layer }).catch(
			() => undefined,
		);
	}

	/** Pin a tile (by its key), or unpin it. */
	togglePin(key: string): void {
		const next = new Set(this.pinned.value);
		if (!next.delete(key)) next.add(key);
		this.pinned.value = next;
	}

	/** Where a user stands among the recent speakers (0: the latest); never heard: last. */
	speakerRank(userId: Id): number {
		const index = this.recentSpeakers.value.indexOf(userId);
		return index < 0 ? Number.MAX_SAFE_INTEGER : index;
	}

	/** `users` were just heard (loudest first): they move to the front of the recent speakers. */
	private heard(users: Id[]): void {
		const current = this.recentSpeakers.value;
		if (users.length === 0 || users.every((user, index) => current[index] === user)) return;
		this.recentSpeakers.value = [...users, ...current.filter((user) => !users.includes(user))];
	}

	/**
	 * RTP packets received so far per remote producer (its consumer's inbound-rtp stats):
	 * what the SFU really sends; a paused consumer's count stands still. For the browser tests.
	 */
	async packetsReceived(): Promise<Record<string, number>> {
		const counts: Record<string, number> = {};
		for (const [producerId, state] of this.consumers) {
			let packets = 0;
			for (const stat of (await state.consumer.getStats()).values()) {
				if (stat.type === 'inbound-rtp') packets += (stat as { packetsReceived?: number }).packetsReceived ?? 0;
			}
			counts[producerId] = packets;
		}
		return counts;
	}

	private updateReceived(consumerId: string, change: Partial<Received>): void {
		const producerId = [...this.consumers].find(([, state]) => state.consumer.id === consumerId)?.[0];
		if (producerId === undefined) return;
		const current = this.received.value.get(producerId) ?? { spatialLayer: null, temporalLayer: null, score: null };
		this.received.value = new Map(this.received.value).set(producerId, { ...current, ...change });
	}

	// --- who is in the room ----------------------------------------------------------------

	private addPeers(list: PeerData[]): void {
		const next = new Map(this.peers.value);
		for (const peer of list) {
			if (peer.connection_id === realtime.connectionId) continue;
			next.set(peer.connection_id, {
				connectionId: peer.connection_id,
				userId: peer.user_id,
				displayName: peer.display_name ?? '',
			});
		}
		this.peers.value = next;
	}

	/** A connection left; without its id, every connection of the user did. */
	private dropPeer(userId: Id, connectionId: string | undefined): void {
		const next = new Map(this.peers.value);
		for (const [id, peer] of next) {
			if (connectionId === undefined ? peer.userId === userId : id === connectionId) next.delete(id);
		}
		this.peers.value = next;
		// Gone for good (the server dropped the hand too): unless another tab of theirs stays.
		if (![...next.values()].some((peer) => peer.userId === userId)) this.setHand(userId, false);
		if (this.scores.value.size > 0) {
			const scores = new Map(this.scores.value);
			for (const [id, score] of scores) if (score.userId === userId && !next.has(id)) scores.delete(id);
			this.scores.value = scores;
		}
	}

	// --- in the call: hands, moderation, network quality -------------------------------------

	private setHand(userId: Id, raised: boolean): void {
		const hands = this.hands.value.filter((id) => id !== userId);
		if (raised) hands.push(userId);
		if (hands.length !== this.hands.value.length || raised) this.hands.value = hands;
	}

	async raiseHand(raised: boolean): Promise<void> {
		await this.signal(raised ? 'media:raise_hand' : 'media:lower_hand', {});
		if (this.userId !== undefined) this.setHand(this.userId, raised);
	}

	/** The organizer lowers someone's hand. */
	async lowerHandOf(userId: Id): Promise<void> {
		await this.signal('media:lower_hand', { user_id: userId });
		this.setHand(userId, false);
	}

	async muteParticipant(userId: Id, kind: Kind = 'audio'): Promise<void> {
		await this.signal('media:mute_participant', { user_id: userId, kind });
	}

	async removeParticipant(userId: Id): Promise<void> {
		await this.signal('media:remove_participant', { user_id: userId });
	}

	/** The server paused our producers (`media:muted`): show ourselves muted; we may unmute. */
	private async mutedByOrganizer(kind: Kind, producerIds: string[], by: Id): Promise<void> {
		const ours = (p: types.Producer | undefined) => p !== undefined && producerIds.includes(p.id);
		if (kind === 'audio' && (ours(this.producers.audio) || this.micOn.value)) {
			if (this.mic !== null) this.mic.enabled = false;
			this.micOn.value = false;
			this.producers.audio?.pause();
			this.mutedBy.value = by;
		}
		if (kind === 'video') {
			if (ours(this.producers.video) || this.cameraOn.value) {
				if (this.camera.value !== null) this.camera.value.enabled = false;
				this.cameraOn.value = false;
				this.producers.video?.pause();
			}
			if (ours(this.producers.screen)) await this.stopScreenShare();
		}
	}

	private setScores(list: ScoreData[]): void {
		const scores = new Map<string, NetworkScore>();
		for (const entry of list) {
			scores.set(entry.connection_id, {
				userId: entry.user_id,
				connectionId: entry.connection_id,
				score: entry.score,
				uplink: entry.uplink,
				downlink: entry.downlink,
				rttMs: entry.rtt_ms,
				sendKbps: entry.send_kbps,
			});
		}
		this.scores.value = scores;
	}

	/** A user's network quality: our own connection's for us, the worst of theirs for others. */
	scoreOf(userId: Id): NetworkScore | null {
		let worst: NetworkScore | null = null;
		for (const score of this.scores.value.values()) {
			if (score.userId !== userId || score.score === null) continue;
			if (userId === this.userId && score.connectionId !== realtime.connectionId) continue;
			if (worst === null || score.score < (worst.score ?? 11)) worst = score;
		}
		return worst;
	}

	private setPaused(producerId: string, paused: boolean): void {
		const remote = this.remotes.value.get(producerId);
		if (remote !== undefined && remote.paused !== paused) this.updateRemote({ ...remote, paused });
	}

	// --- local controls ---------------------------------------------------------------------

	async setMic(on: boolean): Promise<void> {
		if (this.mic === null) return;
		this.mic.enabled = on;
		this.micOn.value = on;
		if (on) this.mutedBy.value = null;
		const producer = this.producers.audio;
		if (producer) await (on ? this.resumeProducer(producer) : this.pauseProducer(producer));
	}

	async setCamera(on: boolean): Promise<void> {
		if (this.camera.value === null) return;
		this.camera.value.enabled = on;
		this.cameraOn.value = on;
		const producer = this.producers.video;
		if (producer) await (on ? this.resumeProducer(producer) : this.pauseProducer(producer));
	}

	private async pauseProducer(producer: types.Producer): Promise<void> {
		producer.pause();
		await this.signal('media:producer_pause', { producer_id: producer.id });
	}

	private async resumeProducer(producer: types.Producer): Promise<void> {
		producer.resume();
		await this.signal('media:producer_resume', { producer_id: producer.id });
	}

	async startScreenShare(): Promise<void> {
		if (this.screen.value !== null) return;
		const stream = await navigator.mediaDevices.getDisplayMedia({ video: SCREEN_CONSTRAINTS, audio: false });
		const track = stream.getVideoTracks()[0];
		if (track === undefined) return;
		track.contentHint = 'detail'; // keep the resolution, drop frames when short
		track.addEventListener('ended', () => void this.stopScreenShare());
		this.screen.value = track;
		if (this.sendTransport !== null) await this.produceScreen(this.sendTransport);
	}

	async stopScreenShare(): Promise<void> {
		const producer = this.producers.screen;
		delete this.producers.screen;
		this.screen.value?.stop();
		this.screen.value = null;
		if (producer !== undefined) {
			producer.close();
			await this.signal('media:producer_close', { producer_id: producer.id }).catch(() => undefined);
		}
	}

	async refreshDevices(): Promise<void> {
		const all = await navigator.mediaDevices.enumerateDevices();
		this.devices.value = {
			audioInputs: all.filter((d) => d.kind === 'audioinput' && d.deviceId !== ''),
			videoInputs: all.filter((d) => d.kind === 'videoinput' && d.deviceId !== ''),
		};
	}

	/** Switch to another microphone or camera without renegotiating (`replaceTrack`). */
	async chooseDevice(kind: Kind, deviceId: string): Promise<void> {
		const stream = await navigator.mediaDevices.getUserMedia(
			kind === 'audio'
				? { audio: { deviceId: { exact: deviceId } } }
				: { video: { ...VIDEO_CONSTRAINTS, deviceId: { exact: deviceId } } },
		);
		const track = kind === 'audio' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
		if (track === undefined) return;
		const producer = kind === 'audio' ? this.producers.audio : this.producers.video;
		await producer?.replaceTrack({ track });
		if (kind === 'audio') {
			this.mic?.stop();
			this.mic = track;
			track.enabled = this.micOn.value;
			this.micDeviceId.value = deviceId;
		} else {
			this.camera.value?.stop();
			this.camera.value = track;
			track.enabled = this.cameraOn.value;
			this.cameraDeviceId.value = deviceId;
		}
	}

	// --- leaving ----------------------------------------------------------------------------

	/** Hang up: tell the server (socket and REST), then release everything. */
	async leave(): Promise<void> {
		if (this.left) return;
		const wasIn = this.phase.value === 'joined' || this.phase.value === 'joining';
		this.left = true;
		if (wasIn && realtime.state.value === 'open') {
			await this.signal('media:leave', {}).catch(() => undefined);
		}
		this.teardown();
		if (wasIn) await api.leaveConference(this.tenantId, this.conferenceId).catch(() => undefined);
		if (this.phase.value !== 'failed') this.phase.value = 'ended';
	}

	/** The tab is closing: the socket's close drops our media; the record needs the REST call. */
	private readonly onPageHide = () => {
		if (this.left) return;
		this.left = true;
		api.leaveConferenceOnUnload(this.tenantId, this.conferenceId, currentAccessToken());
		this.teardown();
	};

	/**
	 * Join again with fresh transports and the same local tracks. After a reconnect the
	 * server knows us by a new connection id and we name the old one; on the same socket
	 * (ICE could not be restarted) we leave first.
	 */
	private rejoin(): Promise<void> {
		if (this.left || this.phase.value !== 'joined') return Promise.resolve();
		if (this.rejoining === null) {
			this.rejoining = this.rejoinNow().finally(() => {
				this.rejoining = null;
				this.reconnecting.value = false;
			});
		}
		return this.rejoining;
	}

	private async rejoinNow(): Promise<void> {
		this.reconnecting.value = true;
		let lastError: unknown = null;
		for (let attempt = 0; attempt < REJOIN_ATTEMPTS && !this.left; attempt++) {
			if (attempt > 0) await new Promise((resolve) => window.setTimeout(resolve, REJOIN_PAUSE_MS));
			if (realtime.state.value !== 'open') return; // the next reconnect tries again
			this.closeTransports();
			try {
				const previous = this.joinedAs;
				if (previous === realtime.connectionId) {
					await this.signal('media:leave', {}).catch(() => undefined);
				}
				this.remotes.value = new Map();
				this.peers.value = new Map();
				await this.connectMedia(previous !== realtime.connectionId ? previous : null);
				// The record may have been closed while we were away (the server's grace period).
				await api.joinConference(this.tenantId, this.conferenceId);
				return;
			} catch (error) {
				lastError = error;
				if (error instanceof Error && /\bis (ended|scheduled)\b/.test(error.message)) break;
			}
		}
		if (this.left) return;
		const reason = lastError instanceof Error ? lastError.message : String(lastError);
		this.error.value = `Reconnecting to the call failed: ${reason}`;
		this.phase.value = 'failed';
		this.teardown();
	}

	private closeTransports(): void {
		for (const timer of this.iceTimers.values()) window.clearTimeout(timer);
		this.iceTimers.clear();
		for (const state of this.consumers.values()) state.consumer.close();
		this.consumers.clear();
		this.sendTransport?.close();
		this.recvTransport?.close();
		this.sendTransport = this.recvTransport = null;
		this.producers = {};
	}

	private teardown(): void {
		this.left = true;
		this.unexpose();
		this.stopWanting();
		window.removeEventListener('pagehide', this.onPageHide);
		for (const unsubscribe of this.unsubscribe) unsubscribe();
		this.unsubscribe = [];
		this.closeTransports();
		for (const track of [this.mic, this.camera.value, this.screen.value]) track?.stop();
		this.mic = null;
		this.camera.value = null;
		this.screen.value = null;
		this.remotes.value = new Map();
		this.peers.value = new Map();
		this.hands.value = [];
		this.scores.value = new Map();
	}

	get userId(): Id | undefined {
		return currentUser.value?.id;
	}
}

function frameData<T>(frames: ServerFrame[], type: string): T {
	const frame = frames.find((f) => f.type === type);
	if (frame === undefined) throw new Error(`The server did not send ${type}`);
	return frame.data as T;
}

/** How many simulcast encodings a consumer's producer sends (its scalabilityMode's L). */
function simulcastLayers(parameters: types.RtpParameters): number {
	const mode = parameters.encodings?.[0]?.scalabilityMode ?? 'L1T1';
	const match = /^L(\d+)/.exec(mode);
	return match ? Number(match[1]) : 1;
}
