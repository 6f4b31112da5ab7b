// Add and remove buttons for forms with repeated rows (schedule intervals, check
// arguments) and repeated blocks (a service's redundancy groups). Progressive enhancement: the server always renders a few blank rows and
// reads rows by position, so the form works without this file; with it, a table marked
// `data-rows="interval"` (the noun) and `data-add="Add interval"` gets a "Remove" button
// per row and an "Add …" button that appends a copy of a blank row. Ids, label targets
// and the numbers in labels are renumbered after every change so each row reads as
// "… of interval N" to screen readers. No inline handlers, no build step.
(function () {
  "use strict";

  // `is-3` -> `is-7`; `Start of interval 3` -> `Start of interval 7`.
  function renumber(text, n) {
    return text.replace(/\d+$/, String(n));
  }

  function blank(row) {
    row.querySelectorAll("input").forEach(function (input) {
      if (input.type === "checkbox" || input.type === "radio") {
        input.checked = input.defaultChecked;
      } else {
        input.value = "";
      }
    });
    row.querySelectorAll("select").forEach(function (select) {
      var chosen = 0;
      for (var i = 0; i < select.options.length; i++) {
        if (select.options[i].defaultSelected) chosen = i;
      }
      select.selectedIndex = chosen;
    });
    return row;
  }

  function enhance(table) {
    var body = table.tBodies[0];
    var noun = table.dataset.rows;
    if (!body || !noun || !body.rows.length) return;
    // Taken before anyone types, from the last row (the server ends with blank rows).
    var template = blank(body.rows[body.rows.length - 1].cloneNode(true));

    var head = table.tHead && table.tHead.rows[0];
    if (head) {
      var th = document.createElement("th");
      th.innerHTML = '<span class="sr">Actions</span>';
      head.appendChild(th);
    }

    var add = document.createElement("button");
    add.type = "button";
    add.className = "add-row";
    add.textContent = table.dataset.add || "Add " + noun;
    table.parentNode.insertBefore(add, table.nextSibling);

    function number() {
      Array.prototype.forEach.call(body.rows, function (row, i) {
        var n = i + 1;
        row.querySelectorAll("[id]").forEach(function (el) {
          el.id = renumber(el.id, n);
        });
        row.querySelectorAll("label[for]").forEach(function (label) {
          label.htmlFor = renumber(label.htmlFor, n);
          label.textContent = renumber(label.textContent, n);
        });
        var remove = row.querySelector("button.remove-row");
        if (remove) remove.setAttribute("aria-label", "Remove " + noun + " " + n);
      });
    }

    function withRemove(row) {
      var cell = document.createElement("td");
      cell.className = "row-actions";
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove-row";
      remove.textContent = "Remove";
      cell.appendChild(remove);
      row.appendChild(cell);
      return row;
    }

    Array.prototype.forEach.call(body.rows, withRemove);
    number();

    add.addEventListener("click", function () {
      var row = withRemove(template.cloneNode(true));
      body.appendChild(row);
      number();
      var first = row.querySelector("input, select, textarea");
      if (first) first.focus();
    });

    body.addEventListener("click", function (e) {
      var remove = e.target.closest("button.remove-row");
      if (!remove) return;
      var row = remove.closest("tr");
      // Focus goes where the row was: the next row's button, else the previous, else Add.
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      number();
      (next ? next.querySelector("button.remove-row") : add).focus();
    });
  }

  document.querySelectorAll("table[data-rows]").forEach(enhance);

  // Repeated blocks (the redundancy groups of a service): a container marked
  // `data-blocks="redundancy group"`, `data-prefix="rg"` and `data-count="rg_count"` holds
  // `[data-block]` children whose field names carry their position (`rg0_name`,
  // `rg0_members`), as the server reads them; the hidden count field says how many to read.
  // Add copies a blank block, Remove drops one, and every name, id, label target and
  // filter target is renumbered after each change.
  function enhanceBlocks(box) {
    var noun = box.dataset.blocks, prefix = box.dataset.prefix;
    var count = box.form && box.form.elements[box.dataset.count];
    var blocks = function () { return box.querySelectorAll("[data-block]"); };
    if (!noun || !prefix || !count || !blocks().length) return;
    var last = blocks()[blocks().length - 1];
    var template = blank(last.cloneNode(true));
    template.querySelectorAll("tr[hidden]").forEach(function (tr) { tr.hidden = false; });
    var numbered = new RegExp("\\b" + prefix + "\\d+_", "g");
    var spoken = new RegExp("(" + noun + " )\\d+", "g");
    var ATTRS = ["id", "name", "for", "data-filter", "aria-describedby", "aria-labelledby"];

    var add = document.createElement("button");
    add.type = "button";
    add.className = "add-row";
    add.textContent = box.dataset.add || "Add " + noun;
    box.appendChild(add);

    function number() {
      Array.prototype.forEach.call(blocks(), function (block, i) {
        block.querySelectorAll("*").forEach(function (el) {
          ATTRS.forEach(function (a) {
            var v = el.getAttribute(a);
            if (v) el.setAttribute(a, v.replace(numbered, prefix + i + "_"));
          });
        });
        block.querySelectorAll("label, legend").forEach(function (el) {
          el.childNodes.forEach(function (t) {
            if (t.nodeType === 3) t.nodeValue = t.nodeValue.replace(spoken, "$1" + (i + 1));
          });
        });
        var remove = block.querySelector("button.remove-block");
        if (remove) remove.setAttribute("aria-label", "Remove " + noun + " " + (i + 1));
      });
      count.value = String(blocks().length);
    }

    function withRemove(block) {
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove-block";
      remove.textContent = "Remove";
      block.appendChild(remove);
      return block;
    }

    Array.prototype.forEach.call(blocks(), withRemove);
    number();

    add.addEventListener("click", function () {
      var block = withRemove(template.cloneNode(true));
      box.insertBefore(block, add);
      number();
      var first = block.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
    });

    box.addEventListener("click", function (e) {
      var remove = e.target.closest("button.remove-block");
      if (!remove) return;
      var block = remove.closest("[data-block]");
      var next = block.nextElementSibling && block.nextElementSibling.matches("[data-block]")
        ? block.nextElementSibling : block.previousElementSibling;
      block.remove();
      number();
      var target = next && next.matches("[data-block]") ? next.querySelector("button.remove-block") : add;
      target.focus();
    });
  }

  document.querySelectorAll("[data-blocks]").forEach(enhanceBlocks);
})();
