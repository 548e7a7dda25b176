defmodule Keyring.DAGTest do
  use ExUnit.Case, async: true

  alias Keyring.DAG
  alias Keyring.DAG.{Directory, Event, Raw}
  alias Keyring.Store
  alias Keyring.Test.TmpDir

  doctest Keyring.DAG

  setup context do
    name = Module.concat(__MODULE__, "K#{context.line}")
    start_supervised!({Keyring, name: name, data_dir: TmpDir.new()})
    %{i: [instance: name], name: name}
  end

  test "raw, directory and event nodes round trip through the store", %{i: i} do
    {:ok, blob} = Store.put("file body", instance: i[:instance])
    {:ok, leaf} = DAG.put_node(%Raw{data: "leaf"}, i)
    raw = %Raw{data: <<0, 1, 2>>, links: [{:node, leaf}, {:blob, blob}]}
    assert {:ok, raw_cid} = DAG.put_node(raw, i)
    assert {:ok, ^raw} = DAG.get_node(raw_cid, i)

    dir = %Directory{
      entries: [
        %{name: "b.txt", kind: :file, size: 9, cid: blob},
        %{name: "a", kind: :directory, size: 0, cid: leaf},
        %{name: "run.sh", kind: :executable, size: 9, cid: blob}
      ]
    }

    assert {:ok, dir_cid} = DAG.put_node(dir, i)
    assert {:ok, %Directory{entries: entries}} = DAG.get_node(dir_cid, i)
    assert Enum.map(entries, & &1.name) == ["a", "b.txt", "run.sh"]
    # Entry order does not change the node: one encoding per directory.
    reversed = %Directory{entries: Enum.reverse(dir.entries)}
    assert {:ok, ^dir_cid} = DAG.put_node(reversed, i)

    event = %Event{seq: 3, prev: leaf, payload: "tick", attachments: [{:blob, blob}]}
    assert {:ok, ev_cid} = DAG.put_node(event, i)
    assert {:ok, ^event} = DAG.get_node(ev_cid, i)
  end

  test "nodes that break the format are refused and nothing is stored", %{i: i} do
    blobs = Store.stats(instance: i[:instance]).blobs
    cid = String.duplicate("ab", 32)

    for bad <- [
          %Directory{entries: [%{name: "..", kind: :file, size: 1, cid: cid}]},
          %Directory{entries: [%{name: "a/b", kind: :file, size: 1, cid: cid}]},
          %Directory{
            entries: [
              %{name: "x", kind: :file, size: 1, cid: cid},
              %{name: "x", kind: :directory, size: 1, cid: cid}
            ]
          },
          %Directory{entries: [%{name: "x", kind: :socket, size: 1, cid: cid}]},
          %Event{seq: 1, prev: nil, payload: ""},
          %Raw{data: "x", links: List.duplicate({:blob, cid}, 16_385)}
        ] do
      assert {:error, {:invalid_node, why}} = DAG.put_node(bad, i), inspect(bad, limit: 3)
      assert is_binary(why)
    end

    assert Store.stats(instance: i[:instance]).blobs == blobs
    assert_raise ArgumentError, fn -> DAG.put_node(%Raw{links: [{:node, "nope"}]}, i) end
    assert_raise ArgumentError, fn -> DAG.put_node(%{data: "x"}, i) end
    assert {:error, :not_found} = DAG.get_node(cid, i)
    {:ok, not_a_node} = Store.put("plain bytes", instance: i[:instance])
    assert {:error, {:invalid_node, _}} = DAG.get_node(not_a_node, i)
  end

  test "a large node is encoded and decoded off the normal schedulers", %{i: i} do
    data = :crypto.strong_rand_bytes(900_000)
    links = for n <- 1..2_000, do: {:blob, Keyring.Store.Cid.of(<<n::32>>)}
    node = %Raw{data: data, links: links}
    assert {:ok, cid} = DAG.put_node(node, i)
    assert {:ok, ^node} = DAG.get_node(cid, i)
  end

  test "an event chain counts up from zero and walks back to its start", %{i: i} do
    assert {:ok, e0} = DAG.append_event(nil, "boot", i)
    {:ok, blob} = Store.put("attachment", instance: i[:instance])
    assert {:ok, e1} = DAG.append_event(e0, "tick", i ++ [attachments: [{:blob, blob}]])
    assert {:ok, %Event{seq: 1, prev: ^e0, attachments: [{:blob, ^blob}]}} = DAG.get_node(e1, i)

    assert {:ok, head} = DAG.put_events(Enum.map(1..500, &"event #{&1}"), i ++ [prev: e1])
    assert {:ok, %Event{seq: 501, payload: "event 500"}} = DAG.get_node(head, i)

    seqs = head |> DAG.stream(i) |> Enum.map(fn {_, _, %Event{seq: s}} -> s end)
    assert seqs == Enum.to_list(501..0//-1)
    # With blobs, the attachment is visited as a leaf after the chain below it.
    assert [{^blob, 501, {:blob, 10}}] =
             head
             |> DAG.stream(i ++ [blobs: true])
             |> Enum.filter(&match?({_, _, {:blob, _}}, &1))

    {:ok, raw} = DAG.put_node(%Raw{data: "not an event"}, i)
    assert {:error, {:invalid_node, _}} = DAG.append_event(raw, "x", i)
    assert {:ok, fresh} = DAG.put_events(["a", "b"], i)
    assert {:ok, %Event{seq: 1}} = DAG.get_node(fresh, i)
  end

  test "walks are pre-order, depth-limited, report missing nodes and are lazy", %{i: i} do
    {:ok, c} = DAG.put_node(%Raw{data: "c"}, i)
    {:ok, a} = DAG.put_node(%Raw{data: "a", links: [{:node, c}]}, i)
    absent = Keyring.Store.Cid.of("never stored")
    {:ok, b} = DAG.put_node(%Raw{data: "b", links: [{:node, absent}, {:node, c}]}, i)
    {:ok, root} = DAG.put_node(%Raw{data: "root", links: [{:node, a}, {:node, b}]}, i)

    visits = root |> DAG.stream(i) |> Enum.map(fn {cid, depth, _} -> {cid, depth} end)
    assert visits == [{root, 0}, {a, 1}, {c, 2}, {b, 1}, {absent, 2}]
    assert {_, 2, :missing} = root |> DAG.stream(i) |> Enum.at(4)
    assert [root, a, b] == root |> DAG.stream(i ++ [max_depth: 1]) |> Enum.map(&elem(&1, 0))

    me = self()
    assert :ok = DAG.walk(root, &send(me, {:visit, elem(&1, 0)}), i)
    assert_received {:visit, ^root}
    assert_received {:visit, ^c}

    # A long chain: taking the first items reads one batch, not the chain.
    {:ok, head} = DAG.put_events(Enum.map(1..5_000, &<<&1::32>>), i)
    assert [{^head, 0, %Event{seq: 4_999}} | _] = head |> DAG.stream(i) |> Enum.take(3)
    assert 5_000 == head |> DAG.stream(i) |> Enum.count()
  end

  describe "directory trees" do
    setup do
      src = TmpDir.new("dag-src")
      File.mkdir_p!(Path.join(src, "a/b/c"))
      File.mkdir_p!(Path.join(src, "empty"))
      File.write!(Path.join(src, "top.txt"), "top")
      File.write!(Path.join(src, "zero"), "")
      File.write!(Path.join(src, "a/b/c/deep.bin"), :crypto.strong_rand_bytes(3000))
      File.write!(Path.join(src, "a/large.bin"), :crypto.strong_rand_bytes(1_500_000))
      File.write!(Path.join(src, "a/b/ünïcødé name"), "u")
      File.write!(Path.join(src, "run.sh"), "#!/bin/sh\necho hi\n")
      File.chmod!(Path.join(src, "run.sh"), 0o755)
      %{src: src}
    end

    test "put_dir then get_dir gives back the same tree, modes included", %{i: i, src: src} do
      assert {:ok, root} = DAG.put_dir(src, i)
      assert {:ok, ^root} = DAG.put_dir(src, i)
      dest = Path.join(TmpDir.new("dag-dest"), "out")
      assert :ok = DAG.get_dir(root, dest, i)
      assert tree(dest) == tree(src)
      assert {:ok, %File.Stat{mode: mode}} = File.stat(Path.join(dest, "run.sh"))
      assert Bitwise.band(mode, 0o111) != 0
      assert {:ok, %Directory{entries: entries}} = DAG.get_node(root, i)
      a = Enum.find(entries, &(&1.name == "a"))
      assert a.size == 1_500_000 + 3000 + 1
      assert {:error, {:io, _}} = DAG.get_dir(root, dest, i)
    end

    test "changing one file changes only the nodes on its path", %{i: i, src: src} do
      {:ok, root1} = DAG.put_dir(src, i)
      before = walk_cids(root1, i)
      File.write!(Path.join(src, "a/b/c/deep.bin"), "changed")
      {:ok, root2} = DAG.put_dir(src, i)
      after_change = walk_cids(root2, i)
      # root, a, a/b, a/b/c and the file itself are new; the rest is shared.
      assert MapSet.size(MapSet.difference(after_change, before)) == 5
    end

    test "symlinks are refused unless skipped", %{i: i, src: src} do
      File.ln_s!("top.txt", Path.join(src, "link"))
      assert {:error, {:unsupported_file, path}} = DAG.put_dir(src, i)
      assert String.ends_with?(path, "link")
      assert {:ok, root} = DAG.put_dir(src, i ++ [symlinks: :skip])
      assert {:ok, %Directory{entries: entries}} = DAG.get_node(root, i)
      refute Enum.any?(entries, &(&1.name == "link"))
    end

    test "progress is reported per file", %{i: i, src: src} do
      me = self()
      {:ok, _} = DAG.put_dir(src, i ++ [on_progress: &send(me, {:progress, &1})])
      assert_received {:progress, %{files: 1}}
      assert_received {:progress, %{files: 6, bytes: 1_503_022}}
    end

    test "get_dir stops at a missing file and writes nothing outside dest", %{i: i, src: src} do
      {:ok, root} = DAG.put_dir(src, i)
      {:ok, top} = Store.put("top", instance: i[:instance])
      {:ok, true} = Store.delete(top, instance: i[:instance])
      dest = Path.join(TmpDir.new("dag-dest"), "out")
      assert {:error, {:missing, ^top}} = DAG.get_dir(root, dest, i)
    end
  end

  test "a directory node naming .. (crafted bytes) is refused before anything is written",
       %{i: i} do
    {:ok, blob} = Store.put("escape", instance: i[:instance])
    raw = Keyring.Store.Cid.parse!(blob)
    # version 1, kind directory, one blob link, one record: file "..", size 6
    bytes = <<1, 1, 1, 1>> <> raw <> <<5, 0, 2, "..", 6>>
    {:ok, root} = Store.put(bytes, instance: i[:instance])
    parent = TmpDir.new("dag-escape")
    dest = Path.join(parent, "out")
    assert {:error, {:invalid_node, _}} = DAG.get_dir(root, dest, i)
    assert File.ls!(parent) == ["out"]
    assert File.ls!(dest) == []
  end

  test "put_dir on a file or a missing path is an error", %{i: i} do
    dir = TmpDir.new("dag-file")
    File.write!(Path.join(dir, "f"), "x")
    assert {:error, {:io, _}} = DAG.put_dir(Path.join(dir, "f"), i)
    assert {:error, {:io, _}} = DAG.put_dir(Path.join(dir, "nope"), i)
  end

  defp tree(dir) do
    dir
    |> Path.join("**")
    |> Path.wildcard(match_dot: true)
    |> Enum.map(fn path ->
      rel = Path.relative_to(path, dir)
      if File.dir?(path), do: {rel, :dir}, else: {rel, File.read!(path)}
    end)
    |> Enum.sort()
  end

  defp walk_cids(root, i) do
    root |> DAG.stream(i ++ [blobs: true]) |> MapSet.new(&elem(&1, 0))
  end
end
