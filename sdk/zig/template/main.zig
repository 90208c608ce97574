//! {{name}}: a fless function in Zig. {"name": "Ada"} -> {"message": "Hello, Ada!"}
const std = @import("std");
const fless = @import("fless");

comptime {
    fless.exportMain(@This());
}

/// The answer, written as JSON by std.json.Stringify.
const Greeting = struct { message: []const u8 };

pub fn fl_main(call: *fless.Call, args: std.json.Value) !Greeting {
    var name: []const u8 = "world";
    if (args == .object) {
        if (args.object.get("name")) |value| {
            if (value != .string) return call.fail("name must be a string", .{});
            name = value.string;
        }
    }
    return .{ .message = try std.fmt.allocPrint(call.arena, "Hello, {s}!", .{name}) };
}
