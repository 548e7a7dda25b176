# Content sync part 2 over the real mesh (two instances in this VM, linked
# by QUIC): DAG sync against a level-by-level fetch, and set reconciliation.
#
#   bin/bench dag_sync    (= MIX_ENV=prod mix run --no-start bench/dag_sync.exs)
#   RECON_N=1000000 bin/bench dag_sync     reconcile a million shared blobs
#                                          (slow to set up: ~1 min per node)
#
# - DAG: a tree of raw nodes (fanout 3, depth 8: 9,841 nodes) that B holds;
#   A changes 12 leaves (about 1 % of the nodes differ, ancestors included).
#   B fetches the new root with `have: [old root]` (Keyring.DAG.fetch) while
#   C (same starting state) fetches it level by level, one request per
#   level naming every missing node of that level (what Bitswap does at
#   best). Printed: round trips, wire bytes / bytes of the missing nodes,
#   time, and the ratios of the two.
# - Reconciliation (Keyring.Mesh.reconcile/3) of N shared blobs (default
#   20,000) with k = 1 and 100 differences: round trips and bytes each way.
#   The million-item figures at k = 1, 100, 10,000 over the Rust mesh:
#   cargo test --release -p keyring_net --test mesh -- --ignored --nocapture reconcile_bench
#
# The machine is shared: read the ratios; absolutes move with the load.

defmodule DagSyncBench do
  alias Keyring.DAG.{Codec, Raw}
  alias Keyring.Store.Cid

  def load, do: File.read!("/proc/loadavg") |> String.split() |> hd()
  def fmt2(x), do: :io_lib.format("~.2f", [x * 1.0]) |> to_string()

  # The tree under path `tag`: {root cid, [encoded nodes]}. `changed` leaf
  # tags get other data.
  def tree(tag, 0, _fanout, changed) do
    data = if MapSet.member?(changed, tag), do: "changed " <> tag, else: "leaf " <> tag
    node(%Raw{data: data, links: []}, [])
  end

  def tree(tag, depth, fanout, changed) do
    {links, acc} =
      Enum.map_reduce(0..(fanout - 1), [], fn i, acc ->
        {cid, nodes} = tree("#{tag}.#{i}", depth - 1, fanout, changed)
        {{:node, cid}, nodes ++ acc}
      end)

    node(%Raw{data: "dir " <> tag, links: links}, acc)
  end

  defp node(raw, acc) do
    {:ok, {cid, bytes}} = Codec.encode(raw)
    {Cid.encode(cid), [bytes | acc]}
  end

  def leaf_path(index) do
    Integer.digits(index, 3)
    |> then(&(List.duplicate(0, 8 - length(&1)) ++ &1))
    |> Enum.join(".")
  end

  def store(nodes, instance), do: :ok = Keyring.DAG.put_all(nodes, instance)

  def start(name, dir), do: {:ok, _} = Keyring.start_link(name: name, data_dir: dir)

  # Level by level: one request per level naming every missing node there.
  def level_by_level(root, a_key, ring, instance) do
    mesh = Keyring.Instance.fetch!(instance, :mesh)
    step(mesh, [root], a_key, ring, instance, %{round_trips: 0, wire_bytes: 0, received_bytes: 0})
  end

  defp step(_mesh, [], _a, _ring, _i, acc), do: acc

  defp step(mesh, level, a_key, ring, instance, acc) do
    ref = make_ref()
    roots = Enum.map(level, &Cid.parse!/1)

    :ok = Keyring.Native.mesh_dag_fetch(mesh, ref, ring, a_key, nil, roots, [], false, 0, 60_000)

    report =
      receive do
        {:keyring_reply, ^ref, {:ok, r}} -> r
        {:keyring_reply, ^ref, {:error, e}} -> raise "level fetch failed: #{inspect(e)}"
      end

    next =
      for cid <- level,
          {:ok, %Raw{links: links}} = Keyring.DAG.get_node(cid, instance: instance),
          {:node, child} <- links,
          not Keyring.Store.has?(child, instance: instance),
          uniq: true,
          do: child

    acc = %{
      round_trips: acc.round_trips + 1,
      wire_bytes: acc.wire_bytes + report.wire_bytes,
      received_bytes: acc.received_bytes + report.received_bytes
    }

    step(mesh, next, a_key, ring, instance, acc)
  end

  def run do
    tmp = Path.join(System.tmp_dir!(), "keyring-bench-dagsync-#{System.os_time()}")
    IO.puts("load #{load()}")
    for {n, d} <- [{A, "a"}, {B, "b"}, {C, "c"}], do: start(n, "#{tmp}/#{d}")
    {:ok, ring} = Keyring.Ring.create("bench", instance: A)

    for i <- [B, C] do
      {:ok, invite} = Keyring.Ring.invite(ring, instance: A)
      {:ok, ^ring} = Keyring.join(invite, instance: i)
    end

    a_key = Keyring.Identity.public_key(instance: A)
    a_id = Keyring.Identity.node_id(instance: A)

    # DAG sync against level by level.
    {root1, nodes1} = tree("r", 8, 3, MapSet.new())

    # 12 leaves spread over the tree (leaf index i * 547, as base-3 digits).
    changed = MapSet.new(for i <- 0..11, do: "r." <> leaf_path(i * 547))

    {root2, nodes2} = tree("r", 8, 3, changed)
    for i <- [A, B, C], do: store(nodes1, i)
    store(nodes2, A)
    missing = MapSet.difference(MapSet.new(nodes2), MapSet.new(nodes1))
    missing_bytes = missing |> Enum.map(&byte_size/1) |> Enum.sum()

    IO.puts(
      "DAG: #{length(nodes2)} nodes, depth 8; #{MapSet.size(missing)} differ (#{missing_bytes} B)"
    )

    {:ok, _} = Keyring.Store.share(root2, ring, instance: A)

    {us, {:ok, r}} =
      :timer.tc(fn ->
        Keyring.DAG.fetch(root2, from: a_id, keyring: ring, have: [root1], instance: B)
      end)

    # The baseline needs every node shared (it names inner nodes as roots).
    nodes2
    |> Task.async_stream(
      fn bytes -> Keyring.Store.share(Cid.of(bytes), ring, instance: A) end,
      max_concurrency: 64
    )
    |> Stream.run()

    {lus, l} = :timer.tc(fn -> level_by_level(root2, a_key, ring, C) end)

    IO.puts(
      "  DAG sync:       #{r.round_trips} round trips, #{r.received} nodes, wire/missing " <>
        "#{fmt2(r.wire_bytes / missing_bytes)}, #{fmt2(us / 1000)} ms"
    )

    IO.puts(
      "  level by level: #{l.round_trips} round trips, wire/missing " <>
        "#{fmt2(l.wire_bytes / missing_bytes)}, #{fmt2(lus / 1000)} ms"
    )

    IO.puts(
      "  ratio DAG sync / level by level: round trips #{fmt2(r.round_trips / l.round_trips)}, " <>
        "wire bytes #{fmt2(r.wire_bytes / l.wire_bytes)}, time on loopback #{fmt2(us / lus)}"
    )

    # Loopback round trips cost ~0.1 ms; DAG sync pays instead for expanding
    # `have` on the provider. Past this round-trip time it is faster.
    IO.puts(
      "  break-even round-trip time: #{fmt2(max(us - lus, 0) / 1000 / max(l.round_trips - r.round_trips, 1))} ms"
    )

    # Set reconciliation.
    n = String.to_integer(System.get_env("RECON_N") || "20000")
    recon = Keyring.Ring.create("recon", instance: A) |> elem(1)
    {:ok, invite} = Keyring.Ring.invite(recon, instance: A)
    {:ok, ^recon} = Keyring.join(invite, instance: B)

    share = fn instance, range ->
      range
      |> Task.async_stream(&Keyring.Store.put("item #{&1}", share: recon, instance: instance),
        max_concurrency: 64,
        timeout: :infinity
      )
      |> Stream.run()
    end

    {setup_us, _} = :timer.tc(fn -> for i <- [A, B], do: share.(i, 1..n) end)
    IO.puts("reconcile: #{n} shared blobs per side (set up in #{div(setup_us, 1_000_000)} s)")

    for {k, extra} <- [{1, [n + 1]}, {100, (n + 1)..(n + 100)}] do
      share.(A, extra)
      # Past the responder's 2 s snapshot of its set.
      Process.sleep(2_100)
      {us, {:ok, d}} = :timer.tc(fn -> Keyring.Mesh.reconcile(a_id, recon, instance: B) end)
      true = length(d.need) == k

      IO.puts(
        "  k=#{k}: #{d.round_trips} round trips, sent #{d.sent} B, received #{d.received} B, " <>
          "total #{d.sent + d.received} B, #{fmt2(us / 1000)} ms"
      )
    end

    File.rm_rf!(tmp)
  end
end

DagSyncBench.run()
