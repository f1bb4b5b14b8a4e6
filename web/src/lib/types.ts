// The server's JSON shapes (docs/api.md, docs/protocol.md), as the client reads them.

export type Id = string;

export interface User {
	id: Id;
	email: string;
	username: string;
	display_name: string;
	avatar: string | null;
	time_zone: string | null;
}

export interface AuthResponse {
	access_token: string;
	refresh_token: string;
	expires_in: number;
	user: User;
}

export type Role = 'owner' | 'admin' | 'member';

export interface Tenant {
	id: Id;
	name: string;
	slug: string;
	owner_id: Id;
	role: Role;
}

export interface TenantMember {
	id: Id;
	user_id: Id;
	username: string;
	display_name: string;
	avatar: string | null;
	time_zone: string | null;
	role: Role;
	joined_at: string;
}

/** `tenant:member_added`: to the tenant's members when someone is added. */
export interface MemberAdded {
	tenant_id: Id;
	member: TenantMember;
}

/** `tenant:joined`: to the user who was added, with their role. */
export interface TenantJoined {
	tenant: Tenant;
}

/** `tenant:member_removed`: to the remaining members and the removed user. */
/** `tenant:member_updated`: a member's new role. */
export interface MemberUpdated {
	tenant_id: Id;
	member: TenantMember;
}

/** `channel:updated`: what changed of a channel, and the new paths of it and its sub-channels. */
export interface ChannelUpdated {
	tenant_id: Id;
	channel_id: Id;
	name: string;
	purpose: string | null;
	is_private: boolean;
	archived: boolean;
	archived_at: string | null;
	paths: Record<Id, string>;
}

/** `channel:removed`: channels gone from view (deleted, or made private without us). */
export interface ChannelRemoved {
	tenant_id: Id;
	channel_ids: Id[];
}

export interface MemberRemoved {
	tenant_id: Id;
	user_id: Id;
}

export type ChannelType = 'text' | 'category' | 'voice' | 'announcement' | 'direct';

export interface Channel {
	id: Id;
	name: string;
	path: string;
	channel_type: ChannelType;
	parent_id: Id | null;
	is_private: boolean;
	purpose: string | null;
	member_count: number;
	is_member: boolean;
	created_by: Id;
	created_at: string;
	/** Archived: read-only (history stays readable) until unarchived. */
	archived: boolean;
	archived_at: string | null;
	/** A direct conversation's members (`channel_type` "direct" only). */
	member_ids?: Id[];
}

/** `channel:created`: the channel as the recipient sees it (`is_member` their own). */
export interface ChannelCreated {
	tenant_id: Id;
	channel: Channel;
}

export interface Message {
	id: Id;
	channel_id: Id;
	author_id: Id;
	content: string;
	message_type: 'default' | 'reply';
	thread_id: Id | null;
	referenced_message_id: Id | null;
	/** A top-level message's live replies and when the newest was posted. */
	reply_count: number;
	last_reply_at: string | null;
	is_edited: boolean;
	is_pinned: boolean;
	pinned_at: string | null;
	pinned_by: Id | null;
	nonce: string | null;
	reactions: Reaction[];
	/** Files posted with the message, in upload order. */
	attachments: Attachment[];
	created_at: string;
	updated_at: string;
}

/** A file uploaded into a channel (docs/api.md, Files). */
export interface Attachment {
	id: Id;
	channel_id: Id;
	message_id: Id | null;
	uploader_id: Id;
	name: string;
	content_type: string;
	size: number;
	/** An image the server read: shown inline, with a thumbnail. */
	is_image: boolean;
	width: number | null;
	height: number | null;
	url: string;
	thumbnail_url: string | null;
	created_at: string;
}

/** One emoji on a message: how many gave it, and who (in the order they reacted). */
export interface Reaction {
	emoji: string;
	count: number;
	user_ids: Id[];
}

/** `message:reaction`, and the answer to adding or taking back a reaction. */
export interface MessageReactions {
	message_id: Id;
	channel_id: Id;
	thread_id: Id | null;
	user_id: Id;
	emoji: string;
	added: boolean;
	reactions: Reaction[];
}

/** `message:pinned`: a message was pinned or unpinned (`message` as it is now). */
export interface MessagePinned {
	message_id: Id;
	channel_id: Id;
	thread_id: Id | null;
	is_pinned: boolean;
	user_id: Id;
	message: Message;
}

/** `message:thread`: a thread's root has a new reply count and last reply time. */
export interface MessageThread {
	message_id: Id;
	channel_id: Id;
	reply_count: number;
	last_reply_at: string | null;
}

/** `thread:reply`: a new reply in a thread we follow. */
export interface ThreadReply {
	thread_id: Id;
	channel_id: Id;
	message: Message;
}

export interface MessageDeleted {
	message_id: Id;
	channel_id: Id;
	thread_id: Id | null;
}

export interface Page<T> {
	items: T[];
	total: number;
	page: number;
	per_page: number;
	total_pages: number;
}

export const PRESENCE_STATES = ['online', 'idle', 'dnd', 'offline', 'invisible'] as const;
export type Presence = (typeof PRESENCE_STATES)[number];

export interface PresenceUpdate {
	user_id: Id;
	presence: Presence;
}

export interface TypingEvent {
	channel_id: Id;
	user_id: Id;
}

export type ConferenceStatus = 'scheduled' | 'in_progress' | 'ended';

export interface Conference {
	id: Id;
	tenant_id: Id;
	subject: string;
	status: ConferenceStatus;
	conference_type: 'instant' | 'scheduled';
	meeting_code: string;
	join_url: string;
	organizer_id: Id;
	channel_id: Id | null;
	participant_count: number;
	scheduled_at: string | null;
	started_at: string | null;
	ended_at: string | null;
	created_at: string;
}

/** `conference:started` and `conference:ended`, sent to the members of its channel. */
export interface ConferenceEvent {
	conference_id: Id;
	channel_id: Id;
	subject: string;
	started_by?: Id;
	ended_by?: Id | null;
}

/** A channel's read state for us: `GET .../unread`, `PUT .../read` and `channel:read`. */
export interface ChannelRead {
	tenant_id?: Id;
	channel_id: Id;
	/** Our read marker: the newest top-level message we read (null before any). */
	message_id: Id | null;
	unread_count: number;
	mention_count: number;
}

/** What asks for our attention: a message naming us, the channel, or sent to us directly. */
export interface UserNotification {
	id: Id;
	tenant_id: Id;
	kind: 'mention' | 'direct' | 'channel' | 'here';
	channel_id: Id;
	message_id: Id;
	/** The thread the message is a reply in, or null. */
	thread_id: Id | null;
	actor_id: Id;
	excerpt: string;
	created_at: string;
	read: boolean;
}

/** `notification:new`: one more, and how many are unread now. */
export interface NotificationNew {
	notification: UserNotification;
	unread_count: number;
}

/** `notification:read` and the answers of the read routes. */
export interface NotificationsRead {
	tenant_id: Id;
	notification_ids: Id[];
	unread_count: number;
}

/** `channel:muted` and the answers of `PUT`/`DELETE .../mute`. */
export interface ChannelMuted {
	tenant_id: Id;
	channel_id: Id;
	muted: boolean;
}

/** A piece of a search result's text; `match` pieces are the words that matched. */
export interface SnippetPart {
	text: string;
	match: boolean;
}

export interface SearchPerson {
	id: Id;
	username: string;
	display_name: string;
	avatar: string | null;
}

export interface SearchChannel {
	id: Id;
	name: string;
	path: string;
	channel_type: ChannelType;
	is_private: boolean;
	member_ids?: Id[];
}

export interface SearchMessage {
	id: Id;
	channel_id: Id;
	/** A thread reply: the top-level message whose thread holds it. */
	thread_id: Id | null;
	created_at: string;
	is_edited: boolean;
	snippet: SnippetPart[];
	channel: SearchChannel;
	author: SearchPerson;
}

/** `GET /tenant/{tid}/search` (docs/api.md, Search). */
export interface SearchResults {
	messages: SearchMessage[];
	next_before: Id | null;
	people: SearchPerson[];
	channels: SearchChannel[];
}

/** `user:updated`: a user's new profile, to everyone sharing a workspace with them. */
export interface UserUpdated {
	user: Omit<User, 'email'>;
}
