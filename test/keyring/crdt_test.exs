defmodule Keyring.CRDTTest do
  use ExUnit.Case, async: true

  alias Keyring.CRDT
  alias Keyring.CRDT.AWLWWMap
  import Keyring.Test.Eventually

  setup context do
    scope = :"crdt_scope_#{System.unique_integer([:positive])}"
    start_supervised!(%{id: scope, start: {:pg, :start_link, [scope]}})
    {:ok, scope: scope, group: context.test}
  end

  defp start(ctx, name, opts \\ []) do
    opts = Keyword.merge([name: name, scope: ctx.scope, group: ctx.group], opts)
    start_supervised!({CRDT, opts})
  end

  test "writes reach the other replica and fire its change callback", ctx do
    parent = self()
    start(ctx, :crdt_a1)
    start(ctx, :crdt_b1, on_change: &send(parent, {:changed, &1}))
    :ok = CRDT.put(:crdt_a1, :k, 1)
    assert_receive {:changed, [{:put, :k, 1}]}, 5_000
    assert CRDT.get(:crdt_b1, :k) == 1
    :ok = CRDT.delete(:crdt_a1, :k)
    assert_receive {:changed, [{:delete, :k}]}, 5_000
    assert CRDT.get(:crdt_b1, :k, :gone) == :gone
  end

  test "a replica that starts late catches up through anti-entropy", ctx do
    start(ctx, :crdt_a2)
    CRDT.put_all(:crdt_a2, for(i <- 1..500, do: {i, i * 2}))
    CRDT.delete(:crdt_a2, 7)
    start(ctx, :crdt_b2)
    eventually(fn -> CRDT.size(:crdt_b2) == 499 end)
    assert CRDT.to_map(:crdt_b2) == CRDT.to_map(:crdt_a2)
    assert CRDT.root(:crdt_a2) == CRDT.root(:crdt_b2)
  end

  test "bad options raise ArgumentError", ctx do
    assert_raise ArgumentError, fn -> CRDT.start_link(scope: ctx.scope) end
    assert_raise ArgumentError, fn -> CRDT.start_link(name: :x, sync_interval: 0) end
    assert_raise ArgumentError, fn -> CRDT.start_link(name: :x, on_change: :nope) end
    assert_raise ArgumentError, fn -> CRDT.start_link(name: :x, bogus: 1) end
  end

  test "chunks never exceed the byte limit" do
    entries = for i <- 1..2_000, do: {i, {%{r: i}, %{r: {i, {i, 0}, :binary.copy("x", 100)}}}}
    chunks = CRDT.chunk(entries, 16 * 1024)
    assert Enum.all?(chunks, &(:erlang.external_size(&1) <= 16 * 1024 + 64))
    assert chunks |> Enum.map(&length/1) |> Enum.sum() == 2_000
  end

  # delta_crdt_ex#65: a replica far behind must end with every key, and so must
  # the writer. The spy plays an empty replica and records message sizes.
  @tag timeout: 120_000
  test "a fresh replica catches up 100,000 keys and the writer keeps them all", ctx do
    start(ctx, :crdt_a3, max_message_bytes: 1024 * 1024)
    pairs = for i <- 1..100_000, do: {"key-#{i}", i}
    :ok = CRDT.put_all(:crdt_a3, pairs)
    assert CRDT.size(:crdt_a3) == 100_000

    spy = spawn_link(fn -> spy_loop(ctx, []) end)
    start(ctx, :crdt_b3, max_message_bytes: 1024 * 1024)
    eventually(fn -> CRDT.size(:crdt_b3) == 100_000 end, 60_000)
    assert CRDT.size(:crdt_a3) == 100_000
    assert CRDT.to_map(:crdt_b3) == Map.new(pairs)
    assert CRDT.root(:crdt_a3) == CRDT.root(:crdt_b3)

    send(spy, {:report, self()})
    assert_receive {:sizes, sizes}, 30_000
    assert Enum.sum(Enum.map(sizes, fn {_, n} -> n end)) >= 100_000
    assert Enum.all?(sizes, fn {bytes, _} -> bytes <= 1024 * 1024 end)
  end

  defp spy_loop(ctx, sizes) do
    if sizes == [], do: :pg.join(ctx.scope, {CRDT, ctx.group}, self())

    receive do
      {:crdt_ae, :digest, from, _root} ->
        send(from, {:crdt_ae, :buckets, self(), AWLWWMap.bucket_digests(AWLWWMap.new())})
        spy_loop(ctx, [{0, 0} | sizes])

      {:crdt_delta, _from, chunk} = msg ->
        spy_loop(ctx, [{:erlang.external_size(msg), length(chunk)} | sizes])

      {:report, to} ->
        send(to, {:sizes, sizes})

      _other ->
        spy_loop(ctx, [{0, 0} | sizes])
    end
  end
end
