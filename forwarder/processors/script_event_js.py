"""The JavaScript side of the `script` processor: Filebeat's `event` API, written in JavaScript.

It runs inside the embedded engine before the user's scripts. The event
crosses the boundary as JSON text, both ways, so no Python object is ever
reachable from a script, and nothing calls back into Python (which the
engine refuses while a time limit is set). `console.log` and friends collect
their lines in the result; the processor logs them.
"""

EVENT_API_JS = r"""
var console = (function () {
  var lines = [];
  function writer(level) {
    return function () {
      var parts = [];
      for (var i = 0; i < arguments.length; i++) {
        var item = arguments[i];
        parts.push(typeof item === "string" ? item : JSON.stringify(item));
      }
      lines.push([level, parts.join(" ")]);
    };
  }
  return {
    log: writer("info"), info: writer("info"), debug: writer("debug"),
    warn: writer("warning"), error: writer("error"),
    __take: function () { var taken = lines; lines = []; return taken; }
  };
})();

var __forwarder = (function () {
  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // The object holding `key` and the last segment, mapstr-style: a literal dotted key wins.
  function locate(root, key, create) {
    var node = root;
    var rest = key;
    while (true) {
      if (Object.prototype.hasOwnProperty.call(node, rest)) return [node, rest];
      var dot = rest.indexOf(".");
      if (dot < 0) return [node, rest];
      var head = rest.slice(0, dot);
      var child = node[head];
      if (!isObject(child)) {
        if (!create || child !== undefined) return null;
        child = {};
        node[head] = child;
      }
      node = child;
      rest = rest.slice(dot + 1);
    }
  }

  function Event(fields) {
    this.fields = fields;
    this.cancelled = false;
  }
  Event.prototype.Get = function (key) {
    if (key === undefined) return this.fields;
    var place = locate(this.fields, key, false);
    if (place === null || !Object.prototype.hasOwnProperty.call(place[0], place[1])) return null;
    return place[0][place[1]];
  };
  Event.prototype.Put = function (key, value) {
    var place = locate(this.fields, key, true);
    if (place === null) throw new Error("cannot put " + key + ": a value that is not an object is in the way");
    var previous = Object.prototype.hasOwnProperty.call(place[0], place[1]) ? place[0][place[1]] : null;
    place[0][place[1]] = value;
    return previous;
  };
  Event.prototype.Delete = function (key) {
    var place = locate(this.fields, key, false);
    if (place === null || !Object.prototype.hasOwnProperty.call(place[0], place[1])) return false;
    delete place[0][place[1]];
    return true;
  };
  Event.prototype.Rename = function (from, to) {
    var value = this.Get(from);
    if (value === null || this.Get(to) !== null) return false;
    this.Delete(from);
    this.Put(to, value);
    return true;
  };
  Event.prototype.Cancel = function () { this.cancelled = true; };
  Event.prototype.IsCancelled = function () { return this.cancelled; };
  Event.prototype.AppendTo = function (key, value) { append(this, key, value, false); };
  Event.prototype.Tag = function (tag) { append(this, "tags", tag, true); };

  function append(event, key, value, alwaysList) {
    var current = event.Get(key);
    if (current === null) {
      event.Put(key, alwaysList ? [value] : value);
    } else if (Array.isArray(current)) {
      if (current.indexOf(value) < 0) current.push(value);
    } else if (typeof current === "string") {
      if (current !== value) event.Put(key, [current, value]);
    } else {
      throw new Error("unexpected type " + typeof current + " found for " + key + " field");
    }
  }

  return {
    run: function (text) {
      var event = new Event(JSON.parse(text));
      var result = process(event);
      if (result !== undefined && result !== null && result !== event) {
        throw new Error("process must return nothing or the event it was given");
      }
      return JSON.stringify({fields: event.fields, cancelled: event.cancelled, log: console.__take()});
    },
    register: function (text) {
      if (typeof register === "function") register(JSON.parse(text));
      return JSON.stringify(console.__take());
    },
    check: function () {
      return typeof process === "function";
    }
  };
})();

function __forwarder_run(text) { return __forwarder.run(text); }
function __forwarder_register(text) { return __forwarder.register(text); }
"""
