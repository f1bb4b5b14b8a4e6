// Where the call's tiles go (issue 14 item 4): pure functions of the stage's size and the
// number of tiles, giving every tile on the current page a box of its own. The call view
// positions tiles absolutely in these boxes, so no two can overlap, none is under the
// control bar (the stage ends above it), and nothing scrolls: what does not fit goes on
// another page.
//
//   grid       tiles of one size in rows and columns, as large as the stage allows; at most
//              16 a page, fewer when they would be smaller than MIN_TILE (a phone)
//   focus      one large tile (a screen share: "spotlight"; the dominant speaker: "speaker")
//              and the others smaller: in a row along the bottom of a landscape stage, in a
//              grid below it on a portrait one (a phone)

export interface Box {
	x: number;
	y: number;
	width: number;
	height: number;
}

export interface StageLayout {
	/** The large tile (focus layouts), or null. */
	main: Box | null;
	/** One box per tile of the current page, in order. */
	boxes: Box[];
	/** Tiles (besides the large one) a page holds, and how many pages there are. */
	perPage: number;
	pages: number;
}

export const GAP = 8;
/** A grid page never holds more than this many tiles. */
export const MAX_PAGE = 16;
/** The smallest tile still worth showing: a face and a name. */
export const MIN_TILE = { width: 128, height: 80 };
/**
 * Tiles are between 16:9 and 4:3 on a landscape stage, down to 3:4 (portrait) on a portrait
 * one (a phone held upright); video fills them (cropped).
 */
const WIDEST = 16 / 9;
const TALLEST_LANDSCAPE = 4 / 3;
const TALLEST_PORTRAIT = 3 / 4;

interface Fit {
	columns: number;
	rows: number;
	width: number;
	height: number;
}

/**
 * The columns and rows that give `count` tiles the most area in `width` × `height`, among
 * those whose tiles are at least MIN_TILE when there are any (so that a smaller stage
 * never fits more tiles: the page count cannot flip as the stage's bar changes).
 */
export function fitGrid(count: number, width: number, height: number, gap = GAP): Fit {
	const tallest = width >= height ? TALLEST_LANDSCAPE : TALLEST_PORTRAIT;
	let best: Fit = { columns: 1, rows: Math.max(count, 1), width: 0, height: 0 };
	let bestFits = false;
	for (let columns = 1; columns <= Math.max(count, 1); columns++) {
		const rows = Math.ceil(count / columns);
		const cellWidth = (width - gap * (columns - 1)) / columns;
		const cellHeight = (height - gap * (rows - 1)) / rows;
		if (cellWidth <= 0 || cellHeight <= 0) continue;
		const tileWidth = Math.floor(Math.min(cellWidth, cellHeight * WIDEST));
		const tileHeight = Math.floor(Math.min(cellHeight, tileWidth / tallest));
		const fit = { columns, rows, width: tileWidth, height: tileHeight };
		const large = fits(fit);
		if ((large && !bestFits) || (large === bestFits && tileWidth * tileHeight > best.width * best.height)) {
			best = fit;
			bestFits = large;
		}
	}
	return best;
}

function fits(fit: Fit): boolean {
	return fit.width >= MIN_TILE.width && fit.height >= MIN_TILE.height;
}

/** How many tiles a grid page of this size holds: up to MAX_PAGE, none below MIN_TILE. */
export function gridPageSize(width: number, height: number, limit = MAX_PAGE): number {
	for (let count = limit; count > 1; count--) {
		if (fits(fitGrid(count, width, height))) return count;
	}
	return 1;
}

/** `count` tiles of `fit`'s size, row by row, the whole block and each row centred in `area`. */
function place(count: number, fit: Fit, area: Box, gap = GAP): Box[] {
	const rows = Math.ceil(count / fit.columns);
	const blockHeight = rows * fit.height + (rows - 1) * gap;
	const top = area.y + Math.max(0, Math.floor((area.height - blockHeight) / 2));
	const boxes: Box[] = [];
	for (let row = 0; row < rows; row++) {
		const inRow = Math.min(fit.columns, count - row * fit.columns);
		const rowWidth = inRow * fit.width + (inRow - 1) * gap;
		const left = area.x + Math.max(0, Math.floor((area.width - rowWidth) / 2));
		for (let column = 0; column < inRow; column++) {
			boxes.push({
				x: left + column * (fit.width + gap),
				y: top + row * (fit.height + gap),
				width: fit.width,
				height: fit.height,
			});
		}
	}
	return boxes;
}

function pageOf(total: number, perPage: number, page: number): { count: number; pages: number } {
	const pages = Math.max(1, Math.ceil(total / perPage));
	const current = Math.min(Math.max(page, 0), pages - 1);
	return { count: Math.min(perPage, total - current * perPage), pages };
}

/** A grid of `total` tiles in `width` × `height`, showing page `page` (from 0). */
export function gridLayout(total: number, width: number, height: number, page: number): StageLayout {
	const perPage = gridPageSize(width, height);
	const { count, pages } = pageOf(total, perPage, page);
	const area = { x: 0, y: 0, width, height };
	const boxes = count > 0 ? place(count, fitGrid(count, width, height), area) : [];
	return { main: null, boxes, perPage, pages };
}

/**
 * One large tile and `others` smaller ones, showing page `page` of the others. Landscape:
 * the others in a row along the bottom; portrait: in a grid below the large tile.
 */
export function focusLayout(others: number, width: number, height: number, page: number): StageLayout {
	const whole = { x: 0, y: 0, width, height };
	if (others === 0) return { main: centred(whole), boxes: [], perPage: 1, pages: 1 };
	if (width >= height) {
		const stripHeight = Math.round(Math.min(140, Math.max(MIN_TILE.height + 16, height * 0.18)));
		const tileWidth = Math.min(Math.floor(stripHeight * TALLEST_LANDSCAPE), width);
		const perPage = Math.max(1, Math.floor((width + GAP) / (tileWidth + GAP)));
		const { count, pages } = pageOf(others, perPage, page);
		const strip = { x: 0, y: height - stripHeight, width, height: stripHeight };
		const fit = { columns: count, rows: 1, width: tileWidth, height: stripHeight };
		const main = centred({ x: 0, y: 0, width, height: height - stripHeight - GAP });
		return { main, boxes: place(count, fit, strip), perPage, pages };
	}
	// Portrait: the large tile as wide as the stage (16:9), at most half its height.
	const mainHeight = Math.floor(Math.min(width / WIDEST, height * 0.5));
	const rest = { x: 0, y: mainHeight + GAP, width, height: height - mainHeight - GAP };
	const perPage = gridPageSize(rest.width, rest.height);
	const { count, pages } = pageOf(others, perPage, page);
	const main = centred({ x: 0, y: 0, width, height: mainHeight });
	return { main, boxes: place(count, fitGrid(count, rest.width, rest.height), rest), perPage, pages };
}

/** The largest tile (16:9 at most, 3:4 at least) centred in `area`. */
function centred(area: Box): Box {
	const fit = fitGrid(1, area.width, area.height);
	return place(1, fit, area)[0] ?? { ...area };
}
