// What a remote video tile tells the call about itself (its size on screen and whether it
// can be seen, so the SFU sends a layer that suits it and nothing while it is hidden), and
// the debug overlay (`?debug`) with the resolution received and the SFU's layers and score.
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import type { RefObject } from 'preact';
import type { CallSession } from '../lib/call';
import { debugOverlay } from '../lib/simulcast';

/**
 * Report the tile's height and visibility to the session while `producerId` is shown in it,
 * and that it is not visible once the tile is gone (off the current page).
 */
export function useTileView(
	session: CallSession,
	producerId: string | undefined,
	tile: RefObject<HTMLElement | null>,
): void {
	// A layout effect, reporting at once: a consumer is resumed only once its tile is known
	// to be on the stage, and that should not wait for the observers' first callbacks.
	useLayoutEffect(() => {
		const element = tile.current;
		if (producerId === undefined || element === null) return;
		let height = element.clientHeight;
		let onScreen = true;
		const report = () =>
			void session.setTileView(producerId, { height, visible: onScreen && document.visibilityState === 'visible' });
		const resized = new ResizeObserver(([entry]) => {
			height = entry.contentRect.height;
			report();
		});
		const shown = new IntersectionObserver(([entry]) => {
			onScreen = entry.isIntersecting;
			report();
		});
		resized.observe(element);
		shown.observe(element);
		report(); // on the stage, so visible until the IntersectionObserver says otherwise
		document.addEventListener('visibilitychange', report);
		return () => {
			resized.disconnect();
			shown.disconnect();
			document.removeEventListener('visibilitychange', report);
			// Off the stage (another page, or gone): nobody sees it.
			void session.setTileView(producerId, { height, visible: false });
		};
	}, [session, producerId, tile]);
}

/** The received resolution of `video` and what the SFU reports for `producerId` (`?debug`). */
export function DebugOverlay(props: {
	session: CallSession;
	producerId: string | undefined;
	video: RefObject<HTMLVideoElement | null>;
}) {
	const [size, setSize] = useState('');
	const enabled = debugOverlay();
	useEffect(() => {
		const element = props.video.current;
		if (!enabled || element === null) return;
		const update = () => setSize(element.videoWidth ? `${element.videoWidth}×${element.videoHeight}` : '');
		element.addEventListener('resize', update);
		element.addEventListener('loadedmetadata', update);
		update();
		return () => {
			element.removeEventListener('resize', update);
			element.removeEventListener('loadedmetadata', update);
		};
	}, [enabled, props.video]);
	if (!enabled) return null;
	const received = props.producerId ? props.session.received.value.get(props.producerId) : undefined;
	const layers =
		received?.spatialLayer != null ? ` S${received.spatialLayer}T${received.temporalLayer ?? 0}` : '';
	const score = received?.score != null ? ` score ${received.score}` : '';
	return (
		<div class="tile-debug" data-testid="tile-debug">
			{size || '—'}
			{layers}
			{score}
		</div>
	);
}
