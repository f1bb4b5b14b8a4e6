// Conferences: the call button of a channel, the list of calls, and the call view.
import type { JSX } from 'preact';
import type { Channel } from '../lib/types';

export function CallButton(_props: { channel: Channel }) {
	return null;
}

export function CallsPage({ header }: { header: JSX.Element }) {
	return (
		<section class="explore-view">
			<header class="main-header">
				{header}
				<h1>Calls</h1>
			</header>
			<p class="muted scroll-body">Calls are not available on this server yet.</p>
		</section>
	);
}

export function CallPage({ header }: { conferenceId: string; header: JSX.Element }) {
	return <CallsPage header={header} />;
}
