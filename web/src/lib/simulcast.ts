// How this client sends video and which layer it asks for per tile (issue 13).
//
// A camera is produced as simulcast: three encodings from a 720p capture (1/4, 1/2 and full
// size), two below that (half and full), each with a bitrate ceiling, so the SFU can give
// every receiver the one its link and its tile suit. A screen share is one encoding at full
// resolution and a low frame rate: text needs pixels, not motion.
import type { types } from 'mediasoup-client';
import { debugMode } from './debug';

/** Bitrate ceilings (bps) per layer, lowest first, for the capture heights below. */
const CAMERA_720P: types.RtpEncodingParameters[] = [
	{ scaleResolutionDownBy: 4, maxBitrate: 150_000 },
	{ scaleResolutionDownBy: 2, maxBitrate: 500_000 },
	{ scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];
const CAMERA_SMALL: types.RtpEncodingParameters[] = [
	{ scaleResolutionDownBy: 2, maxBitrate: 150_000 },
	{ scaleResolutionDownBy: 1, maxBitrate: 600_000 },
];

/** The camera's encodings for the resolution the camera actually gives. */
export function cameraEncodings(track: MediaStreamTrack): types.RtpEncodingParameters[] {
	const height = track.getSettings().height ?? 0;
	const layers = height >= 720 ? CAMERA_720P : CAMERA_SMALL;
	return layers.map((encoding) => ({ ...encoding }));
}

/** The camera capture asked for: 720p where the camera gives it. */
export const CAMERA_CONSTRAINTS: MediaTrackConstraints = {
	width: { ideal: 1280 },
	height: { ideal: 720 },
	frameRate: { ideal: 30 },
};

/** Screen capture: full resolution, few frames (slides and code change rarely). */
export const SCREEN_CONSTRAINTS: MediaTrackConstraints = {
	width: { max: 1920 },
	height: { max: 1080 },
	frameRate: { max: 5 },
};
export const SCREEN_ENCODINGS: types.RtpEncodingParameters[] = [{ maxBitrate: 1_500_000, maxFramerate: 5 }];

/**
 * The spatial layer that suits a tile `height` CSS pixels tall on this screen: the lowest
 * layer whose picture is at least as tall as the tile's device pixels (720p capture: 180,
 * 360, 720 rows). `layers` is how many the producer sends; above 2, the top one.
 */
export function layerForHeight(height: number, pixelRatio: number, layers: number): number {
	const rows = height * pixelRatio;
	const heights = layers >= 3 ? [180, 360] : [360];
	const index = heights.findIndex((h) => rows <= h);
	return index === -1 ? layers - 1 : index;
}

/** Whether the debug overlay (received resolution and layers per tile) is on: `?debug`. */
export function debugOverlay(): boolean {
	return debugMode();
}
