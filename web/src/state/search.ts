// The search box (Ctrl+K) and the jump from a result to its message.
import { signal } from '@preact/signals';
import { navigate, paths } from '../lib/router';
import type { Id, SearchMessage } from '../lib/types';
import { revealMessage } from './chat';
import { tenant } from './workspace';

export const searchOpen = signal(false);

/** The message a jump brought into view, to scroll to and highlight; `seq` tells two jumps
 * to the same message apart. A thread reply is shown in its thread, opened beside it. */
export interface Focus {
	channelId: Id;
	messageId: Id;
	threadId: Id | null;
	seq: number;
}

export const focused = signal<Focus | null>(null);
export const jumpError = signal<string | null>(null);

let jumps = 0;

/** Open a result's channel, load its history back to the message, and focus it. */
export async function showMessage(result: SearchMessage): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const shown = result.thread_id ?? result.id; // a reply is reached through its thread
	jumpError.value = null;
	focused.value = null;
	navigate(paths.channel(open.id, result.channel_id));
	if (await revealMessage(result.channel_id, shown)) {
		jumps += 1;
		focused.value = { channelId: result.channel_id, messageId: shown, threadId: result.thread_id, seq: jumps };
	} else {
		jumpError.value = 'That message is too far back to show here; scroll up to find it.';
	}
}
