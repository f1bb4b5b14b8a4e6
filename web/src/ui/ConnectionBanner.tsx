// "Reconnecting…" while the WebSocket is down, with the time to the next attempt.
import { useEffect, useState } from 'preact/hooks';
import { realtime } from '../lib/realtime';

export function ConnectionBanner() {
	const [now, setNow] = useState(Date.now());
	const visible = realtime.showBanner.value;
	useEffect(() => {
		if (!visible) return;
		const timer = window.setInterval(() => setNow(Date.now()), 500);
		return () => window.clearInterval(timer);
	}, [visible]);
	if (!visible) return null;
	const retryAt = realtime.retryAt.value;
	const seconds = retryAt === null ? 0 : Math.max(0, Math.ceil((retryAt - now) / 1000));
	return (
		<div class="connection-banner" role="status">
			<span class="spinner" aria-hidden="true" />
			<span>
				Reconnecting…{retryAt !== null && seconds > 0 ? ` next try in ${seconds} s` : ''}
			</span>
			<button type="button" class="link-button" onClick={() => realtime.retryNow()}>
				Retry now
			</button>
		</div>
	);
}
