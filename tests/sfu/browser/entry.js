// Test page for the roomler.sfu browser tests (tests/sfu/test_browser.py).
// Bundled with an unmodified mediasoup-client by esbuild at test time
// (tests/sfu/browser/harness.py); the bundle is never committed.
//
// Everything is exposed on window.roomler for Playwright to call. Signaling is
// a JSON-RPC over one WebSocket to tests/sfu/browser/signaling.py, which maps
// each method 1:1 onto the roomler.sfu proxy API.
import { Device, version } from 'mediasoup-client';

const REQUEST_TIMEOUT_MS = 10000;

class Signaling {
	constructor(url) {
		this.url = url;
		this.nextId = 1;
		this.pending = new Map();
		this.notifications = [];
		this.onNotification = () => {};
	}

	open() {
		return new Promise((resolve, reject) => {
			this.socket = new WebSocket(this.url);
			this.socket.onopen = () => resolve();
			this.socket.onerror = () => reject(new Error(`WebSocket to ${this.url} failed`));
			this.socket.onclose = () => this.failPending('signaling WebSocket closed');
			this.socket.onmessage = (event) => this.receive(JSON.parse(event.data));
		});
	}

	receive(message) {
		if (message.notification !== undefined) {
			this.notifications.push(message);
			this.onNotification(message);
			return;
		}
		const entry = this.pending.get(message.id);
		if (entry === undefined) return;
		this.pending.delete(message.id);
		clearTimeout(entry.timer);
		if (message.error !== undefined) entry.reject(new Error(message.error));
		else entry.resolve(message.result);
	}

	request(method, params = {}) {
		const id = this.nextId++;
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.pending.delete(id);
				reject(new Error(`signaling ${method} got no answer in ${REQUEST_TIMEOUT_MS} ms`));
			}, REQUEST_TIMEOUT_MS);
			this.pending.set(id, { resolve, reject, timer });
			this.socket.send(JSON.stringify({ id, method, params }));
		});
	}

	failPending(reason) {
		for (const entry of this.pending.values()) {
			clearTimeout(entry.timer);
			entry.reject(new Error(reason));
		}
		this.pending.clear();
	}
}

const state = {
	signaling: null,
	device: null,
	transports: { send: null, recv: null },
	producers: new Map(),
	consumers: new Map(),
	// consumerId -> what happened to it (filled from server notifications).
	consumerEvents: new Map(),
};

function recordConsumerEvent(consumerId, name) {
	const events = state.consumerEvents.get(consumerId) ?? [];
	events.push(name);
	state.consumerEvents.set(consumerId, events);
}

function handleNotification({ notification, data }) {
	if (notification === 'consumerClosed') {
		recordConsumerEvent(data.consumerId, `closed:${data.reason}`);
		// What a mediasoup-client app does when the server says the consumer is
		// gone: close it locally, which stops its track.
		state.consumers.get(data.consumerId)?.close();
	} else if (notification === 'consumerPaused' || notification === 'consumerResumed') {
		recordConsumerEvent(data.consumerId, notification);
	}
}

async function connect(url) {
	state.signaling = new Signaling(url);
	state.signaling.onNotification = handleNotification;
	await state.signaling.open();
}

async function loadDevice() {
	const routerRtpCapabilities = await state.signaling.request('getRouterRtpCapabilities');
	state.device = await Device.factory();
	await state.device.load({ routerRtpCapabilities });
	return {
		handlerName: state.device.handlerName,
		mediasoupClientVersion: version,
		canProduceAudio: state.device.canProduce('audio'),
		canProduceVideo: state.device.canProduce('video'),
	};
}

function wireTransport(transport) {
	transport.on('connect', ({ dtlsParameters }, callback, errback) => {
		state.signaling
			.request('connectWebRtcTransport', { transportId: transport.id, dtlsParameters })
			.then(callback, errback);
	});
	transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
		state.signaling
			.request('produce', { transportId: transport.id, kind, rtpParameters, appData })
			.then(({ id }) => callback({ id }), errback);
	});
}

async function createTransport(direction) {
	const params = await state.signaling.request('createWebRtcTransport', { direction });
	const transport =
		direction === 'send'
			? state.device.createSendTransport(params)
			: state.device.createRecvTransport(params);
	wireTransport(transport);
	state.transports[direction] = transport;
	return { id: transport.id, port: params.iceCandidates[0].port };
}

// Three simulcast encodings (a quarter, half and full resolution, each with three
// temporal layers), as an app sends a camera to an SFU that picks per receiver.
const SIMULCAST_ENCODINGS = [
	{ scaleResolutionDownBy: 4, maxBitrate: 150_000, scalabilityMode: 'L1T3' },
	{ scaleResolutionDownBy: 2, maxBitrate: 500_000, scalabilityMode: 'L1T3' },
	{ scaleResolutionDownBy: 1, maxBitrate: 1_200_000, scalabilityMode: 'L1T3' },
];

// `svc`: a scalabilityMode ('L1T3', 'L3T3_KEY' ...) for one encoding of `codec` that
// carries every layer (VP9: mediasoup's SVC producer; VP8 L1T3: a simulcast producer of
// one spatial layer).
function videoEncodingOptions(simulcast, svc, codecName = 'vp9') {
	if (svc) {
		const mimeType = `video/${codecName}`;
		const codec = state.device.rtpCapabilities.codecs.find((c) => c.mimeType.toLowerCase() === mimeType);
		return { codec, encodings: [{ scalabilityMode: svc }] };
	}
	return simulcast ? { encodings: SIMULCAST_ENCODINGS } : {};
}

async function produceCameraAndMic({ width = 640, height = 360, simulcast = false, svc = null, codec = 'vp9' } = {}) {
	const stream = await navigator.mediaDevices.getUserMedia({
		audio: true,
		video: { width, height, frameRate: 30 },
	});
	const transport = state.transports.send;
	const videoTrack = stream.getVideoTracks()[0];
	const audio = await transport.produce({ track: stream.getAudioTracks()[0] });
	const video = await transport.produce({
		track: videoTrack,
		...videoEncodingOptions(simulcast, svc, codec),
	});
	state.producers.set(audio.id, audio);
	state.producers.set(video.id, video);
	return { audio: audio.id, video: video.id };
}

async function consume(producerId) {
	const transport = state.transports.recv;
	const params = await state.signaling.request('consume', {
		transportId: transport.id,
		producerId,
		rtpCapabilities: state.device.recvRtpCapabilities,
	});
	const consumer = await transport.consume(params);
	state.consumers.set(consumer.id, consumer);
	// The server creates consumers paused (mediasoup's recommended flow) so no
	// RTP arrives before the browser is ready; resume once it is.
	await state.signaling.request('resumeConsumer', { consumerId: consumer.id });
	return { id: consumer.id, kind: consumer.kind, producerId };
}

async function setPreferredLayers(consumerId, spatialLayer, temporalLayer) {
	return state.signaling.request('setPreferredLayers', { consumerId, spatialLayer, temporalLayer });
}

async function closeProducer(producerId) {
	const producer = state.producers.get(producerId);
	producer.close();
	await state.signaling.request('closeProducer', { producerId });
}

async function closeTransport(direction) {
	const transport = state.transports[direction];
	transport.close();
	await state.signaling.request('closeTransport', { transportId: transport.id });
}

function consumerState(consumerId) {
	const consumer = state.consumers.get(consumerId);
	return {
		closed: consumer.closed,
		trackReadyState: consumer.track.readyState,
		events: state.consumerEvents.get(consumerId) ?? [],
	};
}

function pick(report, type) {
	return [...report.values()].filter((stats) => stats.type === type);
}

// The numbers the tests assert on, per consumer and per producer.
async function stats() {
	const inbound = {};
	for (const [id, consumer] of state.consumers) {
		if (consumer.closed) continue;
		const [rtp] = pick(await consumer.getStats(), 'inbound-rtp');
		inbound[id] = {
			kind: consumer.kind,
			producerId: consumer.producerId,
			packetsReceived: rtp?.packetsReceived ?? 0,
			bytesReceived: rtp?.bytesReceived ?? 0,
			framesDecoded: rtp?.framesDecoded ?? 0,
			frameWidth: rtp?.frameWidth ?? null,
			frameHeight: rtp?.frameHeight ?? null,
			framesPerSecond: rtp?.framesPerSecond ?? null,
			packetsLost: rtp?.packetsLost ?? 0,
			nackCount: rtp?.nackCount ?? 0,
			pliCount: rtp?.pliCount ?? 0,
			firCount: rtp?.firCount ?? 0,
			freezeCount: rtp?.freezeCount ?? 0,
			totalFreezesDuration: rtp?.totalFreezesDuration ?? 0,
			framesDropped: rtp?.framesDropped ?? 0,
			keyFramesDecoded: rtp?.keyFramesDecoded ?? 0,
			framesReceived: rtp?.framesReceived ?? 0,
			jitterBufferDelay: rtp?.jitterBufferDelay ?? 0,
			jitterBufferEmittedCount: rtp?.jitterBufferEmittedCount ?? 0,
		};
	}
	const outbound = {};
	for (const [id, producer] of state.producers) {
		if (producer.closed) continue;
		const rtps = pick(await producer.getStats(), 'outbound-rtp');
		outbound[id] = {
			kind: producer.kind,
			bytesSent: rtps.reduce((sum, rtp) => sum + (rtp.bytesSent ?? 0), 0),
			packetsSent: rtps.reduce((sum, rtp) => sum + (rtp.packetsSent ?? 0), 0),
			framesEncoded: rtps.reduce((sum, rtp) => sum + (rtp.framesEncoded ?? 0), 0),
			targetBitrate: rtps.reduce((sum, rtp) => sum + (rtp.targetBitrate ?? 0), 0),
			qualityLimitationReason: rtps[0]?.qualityLimitationReason ?? null,
			frameWidth: rtps[0]?.frameWidth ?? null,
			frameHeight: rtps[0]?.frameHeight ?? null,
			framesPerSecond: rtps[0]?.framesPerSecond ?? null,
			// Each simulcast encoding as the sender reports encoding it.
			encodings: rtps.map((rtp) => ({
				rid: rtp.rid ?? null,
				scalabilityMode: rtp.scalabilityMode ?? null,
				encoderImplementation: rtp.encoderImplementation ?? null,
				frameWidth: rtp.frameWidth ?? null,
				framesPerSecond: rtp.framesPerSecond ?? null,
				framesEncoded: rtp.framesEncoded ?? 0,
				active: rtp.active ?? null,
				targetBitrate: rtp.targetBitrate ?? null,
				qualityLimitationReason: rtp.qualityLimitationReason ?? null,
			})),
			timestamp: rtps[0]?.timestamp ?? performance.timeOrigin + performance.now(),
		};
	}
	return { inbound, outbound };
}

// Everything getStats() knows, for failure reports (what chrome://webrtc-internals shows).
async function fullStats() {
	const result = {};
	for (const [direction, transport] of Object.entries(state.transports)) {
		if (transport === null || transport.closed) continue;
		result[direction] = {
			connectionState: transport.connectionState,
			stats: [...(await transport.getStats()).values()],
		};
	}
	return result;
}

// A page no test can drive (Firefox: Playwright drives only its own patched builds)
// runs on its own when opened as /?autostart=simulcast&name=N: it connects, takes the
// camera *before* creating its transport (Firefox gathers loopback candidates only once
// the page may capture), produces simulcast video, and POSTs its state and getStats()
// to /report/N every half second.
async function autostart(params) {
	const name = params.get('name') ?? 'page';
	const report = { name, phase: 'starting', error: null, producerId: null, userAgent: navigator.userAgent };
	const post = () =>
		fetch(`/report/${encodeURIComponent(name)}`, { method: 'POST', body: JSON.stringify(report) }).catch(
			() => undefined,
		);
	try {
		await connect(`ws://${location.host}/ws`);
		report.device = await loadDevice();
		report.phase = 'getUserMedia';
		const width = Number(params.get('width') ?? 640);
		const height = Number(params.get('height') ?? 480);
		const stream = await navigator.mediaDevices.getUserMedia({ video: { width, height, frameRate: 30 } });
		report.phase = 'transport';
		await createTransport('send');
		const transport = state.transports.send;
		transport.on('connectionstatechange', (connectionState) => {
			report.connectionState = connectionState;
			post();
		});
		report.phase = 'produce';
		const producer = await transport.produce({ track: stream.getVideoTracks()[0], encodings: SIMULCAST_ENCODINGS });
		state.producers.set(producer.id, producer);
		report.producerId = producer.id;
		report.rtpParameters = producer.rtpParameters;
		report.phase = 'producing';
	} catch (error) {
		report.error = String(error?.stack ?? error);
	}
	await post();
	setInterval(async () => {
		try {
			report.stats = await stats();
			const full = await fullStats();
			report.candidates = (full.send?.stats ?? [])
				.filter((s) => s.type === 'local-candidate' || s.type === 'candidate-pair')
				.map((s) => ({ type: s.type, address: s.address, port: s.port, state: s.state, nominated: s.nominated }));
		} catch (error) {
			report.statsError = String(error);
		}
		post();
	}, 500);
}

const autostartParams = new URLSearchParams(location.search);
if (autostartParams.get('autostart') === 'simulcast') autostart(autostartParams);

window.roomler = {
	connect,
	loadDevice,
	createTransport,
	produceCameraAndMic,
	consume,
	setPreferredLayers,
	closeProducer,
	closeTransport,
	consumerState,
	stats,
	fullStats,
	notifications: () => state.signaling.notifications,
};
