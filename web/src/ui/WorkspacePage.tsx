// A workspace: sidebar, the routed main view, and the member list.
import { useEffect, useState } from 'preact/hooks';
import { navigate, paths, type Route } from '../lib/router';
import type { Id } from '../lib/types';
import { forgetConferences, loadConferences } from '../state/calls';
import { closeChannel, describe, findUnread } from '../state/chat';
import { forgetNotifications, loadNotifications } from '../state/notifications';
import { channels, openTenant, tenant } from '../state/workspace';
import { ChannelView } from './ChannelView';
import { Link } from './common';
import { ExplorePage } from './ExplorePage';
import { MemberList, membersOpen } from './MemberList';
import { navOpen, Sidebar } from './Sidebar';
import { SearchBox, useSearchShortcut } from './SearchBox';
import { searchOpen } from '../state/search';
import { CallsPage, CallPage } from './calls';

type WorkspaceRoute = Extract<Route, { tenantId: string }>;

const LAST_CHANNEL_KEY = 'roomler.lastChannel.';

function MenuButton() {
	return (
		<button type="button" class="icon-button only-narrow" aria-label="Open menu" onClick={() => (navOpen.value = true)}>
			☰
		</button>
	);
}

/** The channel to show when the workspace itself is opened. */
function landingChannel(tid: Id): Id | null {
	const usable = channels.value.filter((c) => c.is_member && c.channel_type !== 'category');
	const last = localStorage.getItem(LAST_CHANNEL_KEY + tid);
	const channel = usable.find((c) => c.channel_type !== 'direct');
	return usable.find((c) => c.id === last)?.id ?? channel?.id ?? usable[0]?.id ?? null;
}

export function WorkspacePage({ route }: { route: WorkspaceRoute }) {
	const tid = route.tenantId;
	const [error, setError] = useState<string | null>(null);
	const ready = tenant.value?.id === tid;
	useSearchShortcut();

	useEffect(() => {
		setError(null);
		forgetConferences();
		forgetNotifications();
		searchOpen.value = false;
		openTenant(tid)
			.then(() => Promise.all([findUnread(), loadConferences(), loadNotifications()]))
			.catch((err) => setError(describe(err)));
	}, [tid]);

	useEffect(() => {
		if (!ready) return;
		if (route.name === 'channel') {
			localStorage.setItem(LAST_CHANNEL_KEY + tid, route.channelId);
		} else {
			closeChannel();
		}
		if (route.name === 'tenant') {
			const landing = landingChannel(tid);
			navigate(landing ? paths.channel(tid, landing) : paths.explore(tid), { replace: true });
		}
		navOpen.value = false;
	}, [ready, route.name, route.name === 'channel' ? route.channelId : '']);

	if (error !== null) {
		return (
			<main class="tenants-page">
				<section class="card">
					<h1>Cannot open this workspace</h1>
					<p role="alert">{error}</p>
					<Link href="/tenants">Back to your workspaces</Link>
				</section>
			</main>
		);
	}
	if (!ready) return <p class="muted center page-loading">Loading workspace…</p>;

	const header = <MenuButton />;
	let main;
	switch (route.name) {
		case 'channel':
			main = <ChannelView channelId={route.channelId} header={header} />;
			break;
		case 'explore':
			main = <ExplorePage header={header} />;
			break;
		case 'calls':
			main = <CallsPage header={header} />;
			break;
		case 'call':
			main = <CallPage conferenceId={route.conferenceId} header={header} />;
			break;
		default:
			main = null;
	}

	return (
		<div class="workspace">
			<Sidebar />
			<main class="main-pane">{main}</main>
			<MemberList />
			{searchOpen.value && <SearchBox />}
			{(navOpen.value || membersOpen.value) && (
				<div
					class="scrim only-narrow"
					aria-hidden="true"
					onClick={() => {
						navOpen.value = false;
						membersOpen.value = false;
					}}
				/>
			)}
		</div>
	);
}
