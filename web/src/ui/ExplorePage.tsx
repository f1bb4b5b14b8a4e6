// Browse and join the workspace's public channels.
import { useEffect, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import * as api from '../lib/api';
import { navigate, paths } from '../lib/router';
import type { Channel } from '../lib/types';
import { describe } from '../state/chat';
import { channels, refreshChannels, tenant } from '../state/workspace';
import { ErrorText } from './common';

export function ExplorePage({ header }: { header: JSX.Element }) {
	const open = tenant.value!;
	const [query, setQuery] = useState('');
	const [results, setResults] = useState<Channel[] | null>(null);
	const [error, setError] = useState<string | null>(null);

	useEffect(() => {
		let current = true;
		const timer = window.setTimeout(async () => {
			try {
				const found = await api.exploreChannels(open.id, query.trim());
				if (current) {
					setResults(found.filter((c) => c.channel_type !== 'category'));
					setError(null);
				}
			} catch (err) {
				if (current) setError(describe(err));
			}
		}, 200);
		return () => {
			current = false;
			window.clearTimeout(timer);
		};
		// A channel created elsewhere (channel:created) shows up here too.
	}, [open.id, query, channels.value.length]);

	const join = async (channel: Channel) => {
		try {
			// An archived channel is read without joining: it takes no new members.
			if (!channel.is_member && !channel.archived) await api.joinChannel(open.id, channel.id);
			await refreshChannels();
			navigate(paths.channel(open.id, channel.id));
		} catch (err) {
			setError(describe(err));
		}
	};

	return (
		<section class="explore-view" aria-labelledby="explore-title">
			<header class="main-header">
				{header}
				<h1 id="explore-title">Explore channels</h1>
			</header>
			<div class="scroll-body">
				<label class="search">
					<span class="visually-hidden">Search public channels</span>
					<input
						type="search"
						name="q"
						placeholder="Search public channels"
						value={query}
						onInput={(e) => setQuery(e.currentTarget.value)}
					/>
				</label>
				<ErrorText error={error} />
				{results === null ? (
					<p class="muted">Loading…</p>
				) : results.length === 0 ? (
					<p class="muted">No public channel matches.</p>
				) : (
					<ul class="explore-list">
						{results.map((channel) => (
							<li key={channel.id} class="explore-item">
								<div>
									<strong># {channel.path.replaceAll('.', ' / ')}</strong>
									{channel.archived && <span class="archived-tag"> archived</span>}
									<p class="muted">
										{channel.purpose ?? 'No purpose set'} · {channel.member_count}{' '}
										{channel.member_count === 1 ? 'member' : 'members'}
									</p>
								</div>
								<button type="button" class={channel.is_member || channel.archived ? '' : 'primary'} onClick={() => void join(channel)}>
									{channel.is_member || channel.archived ? 'Open' : `Join ${channel.name}`}
								</button>
							</li>
						))}
					</ul>
				)}
			</div>
		</section>
	);
}
