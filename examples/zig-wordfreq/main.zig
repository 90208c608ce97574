//! zig-wordfreq: the most frequent words of a text.
//!
//! In:  {"text": "the cat and the hat", "top": 2}        (top defaults to 10)
//! Out: {"words": 5, "distinct": 4, "top": [{"word": "the", "count": 2},
//!                                          {"word": "and", "count": 1}]}
//! Words are runs of ASCII letters, digits and apostrophes, lower-cased;
//! ties go to the word first in alphabetical order.
const std = @import("std");
const fless = @import("fless");

comptime {
    fless.exportMain(@This());
}

const Entry = struct { word: []const u8, count: u64 };
const Report = struct { words: u64, distinct: u64, top: []Entry };

fn isWordByte(c: u8) bool {
    return std.ascii.isAlphanumeric(c) or c == '\'';
}

fn before(_: void, a: Entry, b: Entry) bool {
    if (a.count != b.count) return a.count > b.count;
    return std.mem.lessThan(u8, a.word, b.word);
}

pub fn fl_main(call: *fless.Call, args: std.json.Value) !Report {
    if (args != .object) return call.fail("arguments must be an object", .{});
    const text_value = args.object.get("text") orelse return call.fail("missing text", .{});
    if (text_value != .string) return call.fail("text must be a string", .{});
    var top: usize = 10;
    if (args.object.get("top")) |value| {
        if (value != .integer or value.integer < 0) return call.fail("top must be a whole number", .{});
        top = @intCast(value.integer);
    }

    const text = text_value.string;
    var counts: std.StringHashMapUnmanaged(u64) = .empty;
    var words: u64 = 0;
    var i: usize = 0;
    while (i < text.len) {
        while (i < text.len and !isWordByte(text[i])) i += 1;
        const start = i;
        while (i < text.len and isWordByte(text[i])) i += 1;
        if (i == start) break;
        const word = try std.ascii.allocLowerString(call.arena, text[start..i]);
        const slot = try counts.getOrPut(call.arena, word);
        slot.value_ptr.* = if (slot.found_existing) slot.value_ptr.* + 1 else 1;
        words += 1;
    }

    const entries = try call.arena.alloc(Entry, counts.count());
    var it = counts.iterator();
    var n: usize = 0;
    while (it.next()) |kv| : (n += 1) entries[n] = .{ .word = kv.key_ptr.*, .count = kv.value_ptr.* };
    std.mem.sort(Entry, entries, {}, before);
    return .{ .words = words, .distinct = entries.len, .top = entries[0..@min(top, entries.len)] };
}
