defmodule Keyring.Feed.Server do
  @moduledoc false
  # Owns the instance's FeedBook (a NIF resource: chains, waiting entries,
  # forks; see keyring_core::feed) and is its only caller. Every change is
  # made durable in the store before it is acknowledged or announced: an
  # append answers after its entry's put_ref committed, an ingest after
  # every entry it chained and every fork it revealed were written.
  #
  # On start the chains are rebuilt from the store (entries were verified
  # before they were stored, so only their links are checked again).
  # Waiting entries and the in-memory fork set are not kept across a
  # restart: waiting entries come again from peers, forks stay in the store.

  use GenServer

  require Logger

  alias Keyring.{Instance, Native, PubSub, Store}
  alias Keyring.Feed.{Entry, Layout}

  @topic "keyring:feed"
  @max_ahead 1_048_576
  @max_waiting_per_feed 4096
  @max_waiting_bytes 64 * 1024 * 1024

  def topic, do: @topic

  def start_link(opts),
    do: GenServer.start_link(__MODULE__, opts, name: server(opts[:name]))

  # Named <instance>.Feed.Server: the last segment alone would collide.
  def server(instance), do: Module.concat([instance, "Feed.Server"])

  @impl GenServer
  def init(opts) do
    name = opts[:name]
    book = Native.feed_book_new(@max_ahead, @max_waiting_per_feed, @max_waiting_bytes)

    state = %{
      name: name,
      book: book,
      keypair: Instance.fetch!(name, :keypair),
      me: Instance.fetch!(name, :public_key),
      queue: :queue.new(),
      done: MapSet.new()
    }

    load(state)
    {:ok, state}
  end

  @impl GenServer
  def handle_call({:append, ring, type, content}, from, state) do
    now = System.os_time(:millisecond)

    with :ok <- ensure_feed(state, ring, state.me),
         {:ok, {_status, fields, chained, forks}} <-
           Native.feed_append(state.book, state.keypair, ring, now, type, content) do
      entry = Entry.from_native(fields)
      enqueue(state, from, {:ok, entry}, [{ring, entry, chained, forks}])
    else
      {:error, _} = error -> {:reply, error, state}
    end
  end

  def handle_call({:ingest, ring, members, entries}, from, state) do
    {:ok, results} = Native.feed_ingest(state.book, ring, members, entries)

    {replies, changes} =
      Enum.map_reduce(results, [], fn
        {:ok, {status, fields, chained, forks}}, acc ->
          {{:ok, status}, [{ring, Entry.from_native(fields), chained, forks} | acc]}

        {:error, _} = error, acc ->
          {error, acc}
      end)

    enqueue(state, from, {:ok, replies}, Enum.reverse(changes))
  end

  def handle_call({:head, ring, author}, _from, state),
    do: {:reply, Native.feed_head(state.book, ring, author), state}

  def handle_call({:heads, ring}, _from, state),
    do: {:reply, Native.feed_heads(state.book, ring), state}

  @impl GenServer
  def handle_info({ref, result}, state) when is_reference(ref) do
    Process.demonitor(ref, [:flush])

    case result do
      :ok -> {:noreply, flush(%{state | done: MapSet.put(state.done, ref)})}
      {:error, _} = error -> {:stop, {:persist_failed, error}, state}
    end
  end

  def handle_info(_other, state), do: {:noreply, state}

  # What a call chained (and the forks it revealed) is written by a task, so
  # the writes of calls that follow each other share the store's group commit
  # (one fsync). Replies and events leave in call order, each once its own
  # writes and those of every call before it are durable: an acknowledged
  # entry never depends on one that might still be lost. A crash can leave a
  # later entry stored without an earlier one; loading stops at the first
  # gap, and such an entry was never acknowledged or announced.
  defp enqueue(state, from, reply, changes) do
    {writes, events} =
      changes
      |> Enum.map(fn {ring, entry, chained, forks} ->
        chained = Enum.map(chained, &Entry.from_native/1)

        writes =
          Enum.map(chained, &{Layout.entry(ring, &1.author, &1.seq), &1.bytes}) ++
            Enum.map(forks, &{Layout.fork(ring, entry.author, &1, entry.hash), entry.bytes})

        events =
          Enum.map(chained, &{:keyring_feed, :entry, &1}) ++
            Enum.map(forks, fn seq ->
              {:keyring_feed, :fork,
               %{keyring: ring, author: entry.author, seq: seq, entry: entry}}
            end)

        {chained, writes, events}
      end)
      |> Enum.reduce({[], []}, fn {chained, writes, events}, {ws, es} ->
        :ok = ensure_marker(state, chained)
        {ws ++ writes, es ++ events}
      end)

    name = state.name
    task = Task.async(fn -> put_all(name, writes) end)
    {:noreply, %{state | queue: :queue.in({task.ref, from, reply, events}, state.queue)}}
  end

  defp flush(state) do
    with {:value, {ref, from, reply, events}} <- :queue.peek(state.queue),
         true <- MapSet.member?(state.done, ref) do
      GenServer.reply(from, reply)
      Enum.each(events, &announce(state, &1))
      flush(%{state | queue: :queue.drop(state.queue), done: MapSet.delete(state.done, ref)})
    else
      _ -> state
    end
  end

  # The marker comes before a feed's first entry, so a restart finds every
  # feed that has one.
  defp ensure_marker(state, [%Entry{seq: 1} = first | _]),
    do: put(state, Layout.feed(first.keyring, first.author), "")

  defp ensure_marker(_state, _chained), do: :ok

  defp ensure_feed(state, ring, author) do
    case Native.feed_head(state.book, ring, author) do
      {:ok, nil} -> put(state, Layout.feed(ring, author), "")
      {:ok, _} -> :ok
      {:error, _} = error -> error
    end
  end

  # Writes issued together share the store's group commit (one fsync). A
  # crash between them can leave a later entry stored without an earlier
  # one; loading stops at the first gap and the entries come again from
  # peers, so nothing acknowledged is lost.
  defp put_all(_instance, []), do: :ok

  defp put_all(instance, [{name, value}]), do: Store.put_ref(name, value, instance: instance)

  defp put_all(instance, writes) do
    writes
    |> Task.async_stream(fn {name, value} -> Store.put_ref(name, value, instance: instance) end,
      max_concurrency: 256,
      timeout: :infinity
    )
    |> Enum.find_value(:ok, fn
      {:ok, :ok} -> nil
      {:ok, error} -> error
    end)
  end

  defp put(state, name, value), do: Store.put_ref(name, value, instance: state.name)

  defp announce(state, message), do: PubSub.local_broadcast(@topic, message, instance: state.name)

  defp load(state) do
    {:ok, markers} = Store.list_refs(Layout.feeds(nil), instance: state.name, limit: 1_000_000)

    for {name, _} <- markers do
      <<"keyring/feeds/", ring::binary-size(64), "/", author::binary-size(64)>> = name

      load_feed(
        state,
        Base.decode16!(ring, case: :lower),
        Base.decode16!(author, case: :lower),
        0
      )
    end
  end

  defp load_feed(state, ring, author, first) do
    {prefix, first} = Layout.block(ring, author, first)
    {:ok, pairs} = Store.list_refs(prefix, instance: state.name, limit: Layout.block_size())
    full = if first == 0, do: Layout.block_size() - 1, else: Layout.block_size()

    case Native.feed_load(state.book, Enum.map(pairs, &elem(&1, 1))) do
      {:ok, ^full} ->
        load_feed(state, ring, author, first + Layout.block_size())

      {:ok, _} ->
        :ok

      {:error, reason} ->
        Logger.warning(
          "feed #{inspect(author)} in #{inspect(ring)}: stored chain stops: #{inspect(reason)}"
        )
    end
  end
end
