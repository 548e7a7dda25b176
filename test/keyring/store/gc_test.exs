defmodule Keyring.Store.GCTest do
  # Garbage collection from Elixir: what it deletes and keeps, its figures,
  # the periodic run, and GC racing puts, tags and partial downloads.
  use ExUnit.Case, async: true

  alias Keyring.Store
  alias Keyring.Store.Cid
  alias Keyring.Test.TmpDir

  @moduletag timeout: 120_000
  @ring :crypto.strong_rand_bytes(32)

  setup context do
    name = Module.concat(__MODULE__, "K#{context.line}")
    dir = TmpDir.new()
    start_supervised!({Keyring, name: name, data_dir: dir})
    %{k: [instance: name], dir: dir}
  end

  defp data_files(dir),
    do: Path.wildcard(Path.join([dir, "store", "blobs", "*", "*.data"]))

  test "gc deletes untagged blobs and their files, keeps pinned and shared ones", %{
    k: k,
    dir: dir
  } do
    {:ok, pinned} = Store.put(:crypto.strong_rand_bytes(40_000), k ++ [pin: true])
    {:ok, shared} = Store.put("shared", k ++ [share: @ring])
    garbage = for i <- 1..30, do: elem(Store.put("garbage #{i}", k), 1)
    {:ok, big_garbage} = Store.put(:crypto.strong_rand_bytes(200_000), k)
    assert length(data_files(dir)) == 2

    assert {:ok, %{blobs: 31, bytes: bytes, steps: steps}} = Store.gc(k ++ [budget: 4])
    assert bytes >= 200_000
    assert steps > 31 / 4
    assert Enum.all?([big_garbage | garbage], &(not Store.has?(&1, k)))
    assert {:ok, _} = Store.get(pinned, k ++ [verify: true])
    assert {:ok, "shared"} = Store.get(shared, k)
    assert length(data_files(dir)) == 1
    assert %{gc: %{blobs: 31}, blobs: 2} = Store.stats(k)
    assert {:ok, %{blobs: 0}} = Store.gc(k)
  end

  test "gc_interval runs gc by itself", %{dir: dir} do
    name = Module.concat(__MODULE__, Periodic)

    start_supervised!(
      {Keyring, name: name, data_dir: dir <> "-periodic", store: [gc_interval: 50]},
      id: :periodic
    )

    k = [instance: name]
    {:ok, cid} = Store.put("untagged", k)
    {:ok, kept} = Store.put("tagged", k ++ [pin: "keep"])
    wait_until(fn -> not Store.has?(cid, k) end)
    assert Store.has?(kept, k)
    assert Store.stats(k).gc.steps > 0
  end

  # iroh-blobs#247 and relatives: blobs protected by a tag (set with the
  # put, or before it) and partial downloads in progress survive GC running
  # again and again alongside them; untagged blobs are collected.
  test "gc never deletes protected blobs racing puts, tags and partial downloads", %{
    k: k,
    dir: dir
  } do
    provider = Module.concat(__MODULE__, Provider)
    start_supervised!({Keyring, name: provider, data_dir: dir <> "-provider"}, id: provider)
    p = [instance: provider]
    stop_at = System.monotonic_time(:millisecond) + 4_000
    go = fn -> System.monotonic_time(:millisecond) < stop_at end

    writers = [
      Task.async(fn ->
        loop(go, fn i ->
          data = :crypto.strong_rand_bytes(if rem(i, 3) == 0, do: 40_000, else: 2_000)
          {:ok, cid} = Store.put(data, k ++ [pin: "a#{i}"])
          {cid, data}
        end)
      end),
      Task.async(fn ->
        loop(go, fn i ->
          data = :crypto.strong_rand_bytes(if rem(i, 2) == 0, do: 25_000, else: 700)
          cid = Cid.of(data)
          {:ok, _} = Store.share(cid, @ring, k ++ [name: "b#{i}"])
          {:ok, ^cid} = Store.put(data, k)
          {cid, data}
        end)
      end),
      Task.async(fn ->
        loop(go, fn i ->
          {:ok, _} = Store.put("garbage #{i} #{System.unique_integer()}", k)
          nil
        end)
      end),
      Task.async(fn ->
        loop(go, fn i ->
          data = :crypto.strong_rand_bytes(200_000 + i)
          {:ok, cid} = Store.put(data, p)
          {:ok, _} = Store.pin(cid, k ++ [name: "d#{i}"])

          for g <- 0..12 do
            {:ok, stream} = Store.verified_stream(cid, [{g, g + 1}], p)
            {:ok, _} = Store.put_verified(cid, byte_size(data), [{g, g + 1}], stream, k)
          end

          {cid, data}
        end)
      end)
    ]

    gc_runs = loop(go, fn _ -> {:ok, _} = Store.gc(k ++ [budget: 16]) end)
    protected = writers |> Task.await_many(60_000) |> List.flatten() |> Enum.reject(&is_nil/1)
    {:ok, _} = Store.gc(k)

    assert length(gc_runs) > 3, "GC ran #{length(gc_runs)} times"
    assert length(protected) > 30, "#{length(protected)} protected blobs"

    for {cid, data} <- protected do
      assert {:ok, ^data} = Store.get(cid, k ++ [verify: true]),
             "protected blob #{cid} was collected"
    end

    assert Store.stats(k).gc.blobs > 0
    assert {:ok, _} = Store.check(k)
  end

  defp loop(go, fun, i \\ 0, acc \\ []) do
    if go.(), do: loop(go, fun, i + 1, [fun.(i) | acc]), else: acc
  end

  defp wait_until(fun, tries \\ 200) do
    cond do
      fun.() -> :ok
      tries == 0 -> flunk("condition never held")
      true -> Process.sleep(20) && wait_until(fun, tries - 1)
    end
  end
end
