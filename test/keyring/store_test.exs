defmodule Keyring.StoreTest do
  use ExUnit.Case, async: true

  alias Keyring.Store
  alias Keyring.Store.Cid
  alias Keyring.Test.TmpDir

  doctest Keyring
  doctest Keyring.Store
  doctest Keyring.Store.Cid

  setup context do
    name = Module.concat(__MODULE__, "K#{context.line}")
    dir = TmpDir.new()
    start_supervised!({Keyring, name: name, data_dir: dir})
    %{k: [instance: name], name: name, dir: dir}
  end

  test "put, get, has?, size, delete", %{k: k} do
    assert {:ok, cid} = Store.put("some bytes", k)
    assert cid == Cid.of("some bytes")
    assert {:ok, "some bytes"} = Store.get(cid, k)
    assert {:ok, "some bytes"} = Store.get(Cid.parse!(cid), k ++ [verify: true])
    assert Store.has?(cid, k)
    assert {:ok, 10} = Store.size(cid, k)
    assert {:ok, true} = Store.delete(cid, k)
    assert {:ok, false} = Store.delete(cid, k)
    refute Store.has?(cid, k)
    assert {:error, :not_found} = Store.get(cid, k)
    assert {:error, :not_found} = Store.size(cid, k)
    assert {:error, :not_found} = Store.stream(cid, k)
  end

  test "puts are idempotent and stats count each blob once", %{k: k} do
    assert {:ok, cid} = Store.put("twice", k)
    assert {:ok, ^cid} = Store.put("twice", k)
    assert {:ok, _} = Store.put("", k)
    assert %{blobs: 2, bytes: 5, commits: commits, writes: 3} = Store.stats(k)
    assert commits in 1..3
  end

  test "bad input raises ArgumentError and stores nothing", %{k: k} do
    assert_raise ArgumentError, fn -> Store.put(:atom, k) end
    assert_raise ArgumentError, fn -> Store.put(["io", "list"], k) end
    assert_raise ArgumentError, ~r/invalid cid/, fn -> Store.get("abc", k) end
    assert_raise ArgumentError, ~r/invalid cid/, fn -> Store.get(String.duplicate("z", 64), k) end
    assert_raise ArgumentError, fn -> Store.has?(123, k) end
    assert_raise ArgumentError, fn -> Store.delete(nil, k) end
    assert_raise ArgumentError, fn -> Store.put("x", Keyword.put(k, :bogus, 1)) end
    assert_raise ArgumentError, fn -> Store.put_stream([1, 2], k) end
    assert Store.stats(k).blobs == 0
  end

  test "hot small blobs are served from the cache; a delete is never answered from it",
       %{k: k} do
    {:ok, cid} = Store.put("cached", k)
    assert {:ok, "cached"} = Store.get(cid, k)
    %{cache: %{hits: hits, bytes: bytes}} = Store.stats(k)
    assert bytes >= 6
    assert {:ok, "cached"} = Store.get(cid, k)
    assert Store.stats(k).cache.hits == hits + 1

    # Readers hammer the blob while it is deleted: once the delete is
    # acknowledged, nobody gets it back.
    readers =
      for _ <- 1..4 do
        Task.async(fn ->
          Stream.repeatedly(fn -> Store.get(cid, k) end)
          |> Enum.find(&(&1 == {:error, :not_found}))
        end)
      end

    Process.sleep(5)
    assert {:ok, true} = Store.delete(cid, k)
    assert {:error, :not_found} = Store.get(cid, k)
    assert Enum.all?(Task.await_many(readers), &(&1 == {:error, :not_found}))
    assert {:error, :not_found} = Store.get(cid, k)

    # Large blobs are not cached.
    {:ok, big} = Store.put(:binary.copy("b", 20_000), k)
    {:ok, _} = Store.get(big, k)
    {:ok, _} = Store.get(big, k)
    assert Store.stats(k).cache.bytes < 20_000
  end

  test "the cache can be turned off and its option is validated", %{dir: dir} do
    name = Module.concat(__MODULE__, NoCache)

    start_supervised!(
      {Keyring, name: name, data_dir: dir <> "-nocache", store: [cache_bytes: 0, read_threads: 1]}
    )

    {:ok, cid} = Store.put("uncached", instance: name)
    assert {:ok, "uncached"} = Store.get(cid, instance: name)
    assert {:ok, "uncached"} = Store.get(cid, instance: name)
    assert %{bytes: 0, hits: 0} = Store.stats(instance: name).cache

    assert_raise ArgumentError, ~r/cache_bytes/, fn ->
      Keyring.start_link(name: Bad, data_dir: dir <> "-bad", store: [cache_bytes: -1])
    end

    assert_raise ArgumentError, fn ->
      Keyring.start_link(name: Bad, data_dir: dir <> "-bad", store: [bogus: 1])
    end

    assert_raise ArgumentError, ~r/read_threads/, fn ->
      Keyring.start_link(name: Bad, data_dir: dir <> "-bad", store: [read_threads: 0])
    end

    assert_raise ArgumentError, ~r/ingest_threads/, fn ->
      Keyring.start_link(name: Bad, data_dir: dir <> "-bad", store: [ingest_threads: 100])
    end

    assert_raise ArgumentError, ~r/gc_interval/, fn ->
      Keyring.start_link(name: Bad, data_dir: dir <> "-bad", store: [gc_interval: 0])
    end
  end

  test "a large blob goes in from a stream and comes back as a stream", %{k: k, dir: dir} do
    data = :crypto.strong_rand_bytes(5 * 1024 * 1024 + 123)
    pieces = for <<p::binary-size(65_536) <- data>>, do: p
    rest = binary_part(data, length(pieces) * 65_536, byte_size(data) - length(pieces) * 65_536)

    assert {:ok, cid} = Store.put_stream(pieces ++ [rest], k)
    assert cid == Cid.of(data)
    assert {:ok, stream} = Store.stream(cid, k ++ [verify: true])
    chunks = Enum.to_list(stream)
    assert Enum.all?(chunks, &(byte_size(&1) <= 1_048_576))
    assert IO.iodata_to_binary(chunks) == data
    {:ok, small} = Store.stream(cid, k ++ [chunk_size: 100_000])
    assert Enum.map(small, &byte_size/1) |> Enum.max() == 100_000

    path = Path.join(dir, "blob.bin")
    File.write!(path, data)
    assert {:ok, ^cid} = Store.put_file(path, k)
    assert {:error, {:io, message}} = Store.put_file(Path.join(dir, "missing"), k)
    assert message =~ "missing"
    assert File.ls!(Path.join([dir, "store", "tmp"])) == []
    assert {:ok, ^data} = Store.get(cid, k ++ [verify: true])
  end

  test "a large blob is an owner-only file beside the index", %{k: k, dir: dir} do
    data = :crypto.strong_rand_bytes(300_000)
    {:ok, cid} = Store.put(data, k)
    <<shard::binary-size(2), _::binary>> = cid
    file = Path.join([dir, "store", "blobs", shard, cid <> ".data"])
    assert File.read!(file) == data
    assert %File.Stat{mode: mode} = File.stat!(file)
    assert Bitwise.band(mode, 0o777) == 0o600
    assert %File.Stat{mode: dir_mode} = File.stat!(Path.join(dir, "store"))
    assert Bitwise.band(dir_mode, 0o777) == 0o700
    assert {:ok, ^data} = Store.get(cid, k)
    assert {:ok, 1} = Store.check(k)

    # Bytes changed behind the store's back: a verified read and check/1 see it.
    <<head::binary-size(1000), byte, tail::binary>> = data
    File.write!(file, <<head::binary, Bitwise.bxor(byte, 1), tail::binary>>)
    assert {:error, :content_mismatch} = Store.get(cid, k ++ [verify: true])
    assert {:error, {:corrupt_blobs, [^cid]}} = Store.check(k)
    File.write!(file, data)

    # A stream that began before a delete reads the blob to its end.
    {:ok, stream} = Store.stream(cid, k ++ [chunk_size: 65_536])
    [first | _] = Enum.take(stream, 1)
    assert {:ok, true} = Store.delete(cid, k)
    refute File.exists?(file)
    assert IO.iodata_to_binary(Enum.to_list(stream)) == data
    assert first == binary_part(data, 0, 65_536)
  end

  test "listing is lazy and complete", %{k: k} do
    cids = for i <- 1..2_500, do: elem(Store.put("blob #{i}", k), 1)
    listed = Store.list(k)
    assert Enum.take(listed, 3) == cids |> Enum.sort() |> Enum.take(3)
    assert Enum.to_list(listed) == Enum.sort(cids)
  end

  test "concurrent writers are grouped into shared commits, each acknowledged", %{k: k} do
    results =
      1..64
      |> Task.async_stream(fn i -> Store.put(:binary.copy(<<i>>, 4096), k) end,
        max_concurrency: 64
      )
      |> Enum.map(fn {:ok, {:ok, cid}} -> cid end)

    assert length(Enum.uniq(results)) == 64
    %{commits: commits, writes: 64} = Store.stats(k)
    assert commits < 64
    assert Enum.all?(results, &Store.has?(&1, k))
  end

  test "refs are durable small pointers", %{k: k} do
    assert :ok = Store.put_ref("head/main", "abc", k)
    assert {:ok, "abc"} = Store.get_ref("head/main", k)
    assert :ok = Store.put_ref("head/dev", "def", k)
    assert {:ok, [{"head/dev", "def"}, {"head/main", "abc"}]} = Store.list_refs("head/", k)
    assert {:ok, true} = Store.delete_ref("head/main", k)
    assert {:error, :not_found} = Store.get_ref("head/main", k)

    assert {:error, {:too_large, "ref value"}} =
             Store.put_ref("big", :binary.copy("x", 70_000), k)
  end

  test "corrupted bytes on disk are caught by verify and check/1", %{k: k, name: name, dir: dir} do
    marker = :binary.copy("KEYRING-CORRUPTION-MARKER-", 100)
    {:ok, bad} = Store.put(marker, k)
    {:ok, good} = Store.put("healthy", k)
    assert {:ok, 2} = Store.check(k)
    stop_supervised!(name)

    db = Path.join([dir, "store", "store.redb"])
    bytes = File.read!(db)
    {pos, _} = :binary.match(bytes, marker)
    <<head::binary-size(pos + 10), byte, tail::binary>> = bytes
    File.write!(db, <<head::binary, Bitwise.bxor(byte, 0xFF), tail::binary>>)

    start_supervised!({Keyring, name: name, data_dir: dir})
    # An unverified read may cache the damaged bytes; a verified one still
    # reads the disk and catches them.
    assert {:ok, damaged} = Store.get(bad, k)
    assert damaged != marker
    assert {:error, :content_mismatch} = Store.get(bad, k ++ [verify: true])
    assert {:ok, "healthy"} = Store.get(good, k ++ [verify: true])
    assert {:error, {:corrupt_blobs, [^bad]}} = Store.check(k)
    {:ok, stream} = Store.stream(bad, k ++ [verify: true])
    assert_raise Keyring.Store.CorruptBlobError, fn -> Enum.to_list(stream) end
  end

  test "a second node on the same data dir gets :already_open", %{dir: dir} do
    assert {:error, {:store, :already_open}} = Keyring.start_link(name: Other, data_dir: dir)
    refute Process.whereis(Other)
  end

  test "a corrupted database file is a clear error at start", %{name: name, dir: dir} do
    stop_supervised!(name)
    File.write!(Path.join([dir, "store", "store.redb"]), :binary.copy(<<0xAB>>, 65_536))

    assert {:error, {:store, {reason, _message}}} = Keyring.start_link(name: name, data_dir: dir)
    assert reason in [:corrupted, :io]
  end

  test "after the instance stops, calls fail clearly", %{k: k, name: name} do
    stop_supervised!(name)
    assert_raise ArgumentError, ~r/no Keyring instance/, fn -> Store.put("x", k) end
  end
end
