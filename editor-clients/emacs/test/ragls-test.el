;;; ragls-test.el --- ERT tests of ragls.el in a real Emacs with a real server  -*- lexical-binding: t; -*-

;;; Commentary:

;; Run with `emacs --batch -L editor-clients/emacs -l ert -l
;; editor-clients/emacs/test/ragls-test.el -f ert-run-tests-batch-and-exit'
;; and `ragls' on PATH (tests/editors/test_emacs.py does this).  The tests
;; share one eglot session on a copy of tests/fixtures/minirepo, started by
;; the first test that needs it; the bundled local model answers, with
;; greedy sampling so answers repeat.

;;; Code:

(require 'ert)
(require 'package)
(require 'ragls)

(defconst ragls-test--here (file-name-directory (or load-file-name buffer-file-name)))
(defconst ragls-test--fixture
  (expand-file-name "../../../tests/fixtures/minirepo/" ragls-test--here))
(defconst ragls-test--typed "def add(a, b):\n    return a +"
  "An unsaved buffer's text; greedy SmolLM2 completes it with \" b\".")

(defvar ragls-test--repo nil "The session's repository (a temporary copy of the fixture).")

;; Small and deterministic: greedy sampling, short answers, no dense layer.
(setq ragls-initialization-options
      '(:index (:embeddings :json-false)
        :models (:chat (:temperature 0 :context_length 2048)
                 :completion (:temperature 0 :context_length 2048))
        :recipes (:answer_tokens 48 :context_tokens 512)
        ;; No latency budget: what a test gets does not depend on how busy the machine is.
        :server (:debounce_ms 0 :latency_budget_ms (:automatic 0 :invoked 0)))
      eglot-confirm-server-initiated-edits nil ; no y-or-n-p in batch
      eglot-sync-connect nil
      ragls-inline-idle-delay 0.05)

(defun ragls-test--wait (predicate what &optional seconds)
  "Process events until PREDICATE returns non-nil (its value), or fail naming WHAT."
  (let ((deadline (+ (float-time) (or seconds 180)))
        value)
    (while (and (not (setq value (funcall predicate))) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (or value (ert-fail (format "timed out waiting for %s" what)))))

(defun ragls-test--repo (name)
  "A new git work tree NAME holding a copy of the minirepo fixture."
  (let ((root (file-name-as-directory (make-temp-file name t))))
    (copy-directory ragls-test--fixture root nil t t)
    (let ((default-directory root))
      (should (= 0 (call-process "git" nil nil nil "init" "-q"))))
    root))

(defun ragls-test--session ()
  "The buffer of shop/calc.py (unsaved, not on disk) managed by ragls, index ready."
  (unless ragls-test--repo
    (setq ragls-test--repo (ragls-test--repo "ragls-emacs")))
  (let ((file (expand-file-name "shop/calc.py" ragls-test--repo)))
    (with-current-buffer (find-file-noselect file)
      (unless (eglot-current-server)
        (erase-buffer)
        (insert ragls-test--typed)
        (call-interactively #'eglot))        ; the user's path: eglot-server-programs
      (ragls-test--wait (lambda () (and (eglot-managed-p) (jsonrpc-running-p (eglot-current-server))))
                        "eglot to manage calc.py")
      (ragls-test--wait #'ragls-test--ready "the index")
      (switch-to-buffer (current-buffer)) ; typed keys go to the selected window's buffer
      (delete-other-windows)
      (current-buffer))))

(defun ragls-test--ready ()
  "Whether `ragls-status' says the index is ready (quietly)."
  (let ((inhibit-message t))
    (ignore-errors (string-match-p ": ready," (ragls-status)))))

(defun ragls-test--reset-calc ()
  "Put calc.py back to the typed text, point at its end."
  (erase-buffer)
  (insert ragls-test--typed)
  (goto-char (point-max)))

(defun ragls-test--finals ()
  "Record final chat messages; returns a function giving them, newest first."
  (let ((finals nil))
    (advice-add 'ragls--insert-final :before
                (lambda (_turn message) (push message finals))
                '((name . ragls-test-finals)))
    (lambda () finals)))

(defun ragls-test--section (heading)
  "The text of the chat section under HEADING, in the current buffer."
  (save-excursion
    (goto-char (point-max))
    (search-backward heading)
    (forward-line 1)
    (buffer-substring-no-properties (point) (point-max))))

;;;; The package itself

(ert-deftest ragls-test-byte-compiles-without-warnings ()
  (let* ((source (expand-file-name "../ragls.el" ragls-test--here))
         (target (make-temp-file "ragls" nil ".elc"))
         (byte-compile-dest-file-function (lambda (_) target))
         (byte-compile-error-on-warn t))
    (should (byte-compile-file source))
    (should (> (file-attribute-size (file-attributes target)) 0))))

(ert-deftest ragls-test-installs-with-package-install-file ()
  (let* ((package-user-dir (make-temp-file "elpa" t))
         (package-archives nil)
         (package-check-signature nil)
         (inhibit-message t))
    (package-initialize)
    (package-install-file (expand-file-name "../ragls.el" ragls-test--here))
    (should (package-installed-p 'ragls))
    (should (file-exists-p (expand-file-name "ragls-0.1.0/ragls-autoloads.el" package-user-dir)))))

(ert-deftest ragls-test-registers-with-eglot ()
  (should (rassq 'ragls--eglot-contact eglot-server-programs))
  (should (equal (cdr (eglot--lookup-mode 'python-mode)) (list "python" #'ragls--eglot-contact)))
  (with-current-buffer (ragls-test--session)
    (let ((caps (eglot--capabilities (eglot-current-server))))
      (should (plist-member caps :inlineCompletionProvider))
      ;; the server saw our inlineCompletion capability: no textDocument/completion fallback
      (should-not (plist-member caps :completionProvider))
      (should (eq (plist-get (plist-get (plist-get caps :experimental) :ragls) :chatDelta) t)))
    (should ragls-inline-mode)))

;;;; Inline completion

(ert-deftest ragls-test-inline-completion-on-demand-is-accepted ()
  (with-current-buffer (ragls-test--session)
    (ragls-test--reset-calc)
    (ragls-inline-complete)
    (ragls-test--wait (lambda () ragls--inline) "the ghost text")
    (should (equal (substring-no-properties
                    (overlay-get (car ragls--inline) 'after-string))
                   " b"))
    (should (equal (buffer-string) ragls-test--typed)) ; ghost text is not buffer text
    (should (eq (lookup-key (current-active-maps) (kbd "TAB")) 'ragls-inline-accept))
    (ragls-inline-accept)
    (should (equal (buffer-string) (concat ragls-test--typed " b")))
    (should-not ragls--inline)
    (should-not (eq (key-binding (kbd "TAB")) 'ragls-inline-accept))))

(ert-deftest ragls-test-inline-completion-after-typing-and-dismissed ()
  (with-current-buffer (ragls-test--session)
    (ragls-test--reset-calc)
    (delete-char -2)                    ; "return a" : the user types " +"
    (execute-kbd-macro (kbd "SPC +"))
    (should (equal (buffer-string) ragls-test--typed))
    (ragls-test--wait (lambda () ragls--inline) "an automatic completion")
    (should (equal (substring-no-properties (overlay-get (car ragls--inline) 'after-string)) " b"))
    (ragls-inline-dismiss)
    (should-not ragls--inline)
    (should-not (overlays-in (point-min) (point-max)))
    (should (equal (buffer-string) ragls-test--typed))))

(ert-deftest ragls-test-fontification-neither-stops-nor-drops-the-completion ()
  ;; Redisplay fontifies between keystrokes: text properties move `buffer-modified-tick'
  ;; (batch Emacs never fontifies, so this does what jit-lock does).
  (with-current-buffer (ragls-test--session)
    (ragls-test--reset-calc)
    (let ((this-command 'self-insert-command)) (ragls--inline-post-command)) ; as typing does
    (with-silent-modifications (put-text-property (point-min) (point-max) 'face 'bold))
    (ragls-test--wait (lambda () ragls--inline) "an automatic completion after fontification")
    (with-silent-modifications (put-text-property (point-min) (point-max) 'face 'italic))
    (let ((this-command 'ignore)) (ragls--inline-post-command))
    (should ragls--inline)
    (ragls-inline-dismiss)))

(ert-deftest ragls-test-a-request-sent-while-one-is-in-flight-is-shown ()
  ;; Typing on while the model answers: the older request is cancelled, the newer one shows.
  (with-current-buffer (ragls-test--session)
    (ragls-test--reset-calc)
    (ragls-inline-complete)
    (should ragls--inline-pending)      ; still in flight
    (ragls-inline-complete)
    (ragls-test--wait (lambda () ragls--inline) "the newer request's completion" 60)
    (ragls-inline-dismiss)))

(ert-deftest ragls-test-moving-away-drops-the-completion ()
  (with-current-buffer (ragls-test--session)
    (ragls-test--reset-calc)
    (ragls-inline-complete)
    (ragls-test--wait (lambda () ragls--inline) "the ghost text")
    (execute-kbd-macro (kbd "C-a"))
    (should-not ragls--inline)
    (should (equal (buffer-string) ragls-test--typed))))

;;;; Recipes, chat, search, status

(ert-deftest ragls-test-explain-code-action-streams-into-the-chat-buffer ()
  (let ((finals (ragls-test--finals)))
    (unwind-protect
        (with-current-buffer (progn (ragls-test--session)
                                    (find-file-noselect (expand-file-name "shop/cart.py" ragls-test--repo)))
          (ragls-test--wait #'eglot-managed-p "eglot to manage cart.py")
          (goto-char (point-min))
          (re-search-forward "def add")
          ;; eglot's own command, as a user runs it (one action of that kind: no prompt)
          (eglot-code-actions (point) (point) "refactor.ragls.explain" t)
          (ragls-test--wait (lambda () (funcall finals)) "the recipe's final message")
          (let ((final (car (funcall finals))))
            (should (equal (plist-get final :recipe) "explain"))
            (should-not (plist-get final :error))
            (should (> (length (plist-get final :answer)) 0))
            (with-current-buffer (format "*ragls chat: %s*"
                                         (file-name-nondirectory (directory-file-name ragls-test--repo)))
              (let ((section (ragls-test--section "Recipe explain on cart.py")))
                ;; the streamed deltas, joined, are the whole answer
                (should (string-prefix-p (plist-get final :answer) section))))))
      (advice-remove 'ragls--insert-final 'ragls-test-finals))))

(ert-deftest ragls-test-recipe-command-edits-the-buffer ()
  (let ((finals (ragls-test--finals)))
    (unwind-protect
        (with-current-buffer (ragls-test--session)
          (ragls-test--reset-calc)
          (insert " b   \n")                ; trailing blanks: the recipe's code has none
          (goto-char (point-min))
          (ragls-recipe "docstring")
          (ragls-test--wait (lambda () (funcall finals)) "the docstring recipe")
          (let ((final (car (funcall finals))))
            (should (equal (plist-get final :recipe) "docstring"))
            (should-not (plist-get final :error))
            ;; eglot applied the server's workspace/applyEdit: lines 1-2 are now the recipe's code
            ;; (the bundled model is too small to be trusted to write the docstring itself)
            (should (eq (plist-get final :applied) t))
            (should (equal (buffer-string) (concat (plist-get final :code) "\n")))
            (should-not (string-match-p "b   $" (buffer-string)))))
      (advice-remove 'ragls--insert-final 'ragls-test-finals))))

(ert-deftest ragls-test-ask-streams-an-answer-with-clickable-citations ()
  (let ((finals (ragls-test--finals))
        (deltas 0))
    (advice-add 'ragls--insert :before (lambda (&rest _) (cl-incf deltas)) '((name . ragls-test-deltas)))
    (unwind-protect
        (with-current-buffer (ragls-test--session)
          (let ((chat (ragls-ask "What does SmtpMailer do when it sends a message?")))
            (ragls-test--wait (lambda () (funcall finals)) "the answer")
            (let ((final (car (funcall finals))))
              (should (equal (plist-get final :route) "answer"))
              (should-not (plist-get final :error))
              (should (> deltas 2))       ; streamed in pieces, then the final part
              (with-current-buffer chat
                (should (string-prefix-p (plist-get final :answer)
                                         (ragls-test--section "Q: What does SmtpMailer")))
                (goto-char (point-max))
                (let ((button (ragls-test--wait (lambda () (previous-button (point))) "a citation button")))
                  (should (string-match-p "\\(Citations\\|Sources\\)"
                                          (ragls-test--section "Q: What does SmtpMailer")))
                  (let* ((loc (button-get button 'ragls-location))
                         (path (expand-file-name (plist-get loc :path) ragls-test--repo)))
                    (push-button (button-start button))
                    (should (equal buffer-file-name path))
                    (should (= (line-number-at-pos) (plist-get loc :startLine)))
                    (should (= (line-number-at-pos (mark t)) (1+ (plist-get loc :endLine))))))))))
      (advice-remove 'ragls--insert-final 'ragls-test-finals)
      (advice-remove 'ragls--insert 'ragls-test-deltas))))

(ert-deftest ragls-test-follow-up-and-search-route-in-the-chat-buffer ()
  (let ((finals (ragls-test--finals)))
    (unwind-protect
        (with-current-buffer (ragls-test--session)
          (with-current-buffer (ragls-ask "SmtpMailer")
            (ragls-test--wait (lambda () (funcall finals)) "the search answer")
            (should (equal (plist-get (car (funcall finals)) :route) "search"))
            (should (string-match-p "Results:\n  shop/mailer.py:"
                                    (ragls-test--section "Q: SmtpMailer")))
            (let ((chat-id ragls--chat-id))
              (ragls-ask "And what does it need to connect?") ; in the chat buffer: a follow-up
              (ragls-test--wait (lambda () (= (length (funcall finals)) 2)) "the follow-up")
              (should (equal (plist-get (car (funcall finals)) :chatId) chat-id))
              (should (equal (plist-get (car (funcall finals)) :turn) 2)))))
      (advice-remove 'ragls--insert-final 'ragls-test-finals))))

(ert-deftest ragls-test-search-lists-results-in-xref ()
  (with-current-buffer (ragls-test--session)
    (when (get-buffer "*xref*") (kill-buffer "*xref*"))
    (ragls-search "SmtpMailer")
    (with-current-buffer (ragls-test--wait (lambda () (get-buffer "*xref*")) "the xref buffer")
      (goto-char (point-min))
      (should (looking-at "shop/mailer.py$"))   ; the best hit's file comes first
      (xref-next-line)
      (should (string-match-p "lines [0-9]+-[0-9]+" (thing-at-point 'line t)))
      (xref-goto-xref)
      (should (equal buffer-file-name (expand-file-name "shop/mailer.py" ragls-test--repo))))))

(ert-deftest ragls-test-status-names-the-index-state ()
  (with-current-buffer (ragls-test--session)
    (should (string-match-p (format "ragls %s: ready, [1-9][0-9]* files, [1-9][0-9]* chunks"
                                    (regexp-quote (abbreviate-file-name (directory-file-name ragls-test--repo))))
                            (ragls-status)))))

(ert-deftest ragls-test-models-picker-uses-a-model-and-writes-the-config ()
  (with-current-buffer (ragls-test--session)
    ;; The server writes the user config file: only a scratch one (tests/editors/test_emacs.py sets it).
    (let* ((config (or (getenv "RAGLS_CONFIG") (error "RAGLS_CONFIG must name a scratch config file")))
           (bundled (string-trim (shell-command-to-string
                                  "python -c 'from ragls.llm.gguf import bundled_model_path; print(bundled_model_path())'")))
           (ragls-initialization-options
            (append `(:models (:search_paths [,(file-name-directory bundled)] :scan_ports []))
                    ragls-initialization-options))
           (offered nil))
      (should (file-exists-p bundled))
      (ragls-send-settings)
      (cl-letf (((symbol-function 'completing-read) ; the user picks the first entry each time
                 (lambda (_prompt collection &rest _)
                   (push (all-completions "" collection) offered)
                   (car (all-completions "" collection)))))
        (should (string-match-p "models\\.chat = SmolLM2-135M-Instruct\\.Q4_1 (written to "
                                (ragls-models))))
      (should (equal (car offered) '("chat" "completion" "embedding")))
      (should (string-match-p "^SmolLM2-135M-Instruct\\.Q4_1 \\[search-path\\] llama 135M Q4_1"
                              (car (cadr offered))))
      (with-temp-buffer
        (insert-file-contents config)
        (should (search-forward (format "path = \"%s\"" bundled) nil t))))))

(ert-deftest ragls-test-arena-shows-both-answers-blind-then-takes-the-vote ()
  (with-current-buffer (ragls-test--session)
    ;; The second model comes from tests/editors/test_emacs.py.
    (let* ((second (or (getenv "RAGLS_ARENA_MODEL") (error "RAGLS_ARENA_MODEL must name a second GGUF file")))
           (votes (make-temp-file "ragls-votes" nil ".jsonl"))
           (ragls-initialization-options
            (append `(:arena (:models ["chat" ,second] :votes_file ,votes)) ragls-initialization-options))
           (seen nil))
      (ragls-send-settings)
      (cl-letf (((symbol-function 'completing-read) ; the user reads both answers, then votes B
                 (lambda (prompt collection &rest _)
                   (setq seen (list prompt (all-completions "" collection)
                                    (mapcar (lambda (w) (with-current-buffer (window-buffer w) header-line-format))
                                            (window-list))))
                   "B is better")))
        (let ((said (ragls-arena "how is a discount applied?")))
          (should (string-match-p
                   "^ragls: arena: A was SmolLM2-135M-Instruct\\.Q4_[01], B was SmolLM2-135M-Instruct\\.Q4_[01] (vote recorded in "
                   said))))
      (should (equal (nth 0 seen) "ragls arena: which answer is better? "))
      (should (equal (nth 1 seen) '("A is better" "B is better" "Tie" "Both are bad")))
      (should (equal (nth 2 seen) '("A" "B")))     ; a split, the names hidden until the vote
      (let ((record (with-temp-buffer
                      (insert-file-contents votes)
                      (json-parse-string (buffer-substring (point-min) (line-end-position)) :object-type 'plist))))
        (should (equal (plist-get record :vote) "b"))
        (should (equal (with-current-buffer "*ragls arena B*" header-line-format)
                       (concat "B: " (plist-get (plist-get record :b) :model))))
        (should (equal (with-current-buffer "*ragls arena A*" (string-trim (buffer-string)))
                       (let ((answer (string-trim (plist-get (plist-get record :a) :answer))))
                         (if (string-empty-p answer) "(no answer)" answer))))))
    (ragls-send-settings)))

;;;; Bad input

(ert-deftest ragls-test-missing-binary-names-the-command ()
  (let ((ragls-server-command '("ragls-no-such-program" "serve"))
        (root (ragls-test--repo "ragls-missing")))
    (with-current-buffer (find-file-noselect (expand-file-name "shop/cart.py" root))
      (let ((err (should-error (call-interactively #'eglot) :type 'user-error)))
        (should (string-match-p "cannot start .ragls-no-such-program serve." (cadr err))))
      (let ((err (should-error (ragls-start) :type 'user-error)))
        (should (string-match-p "ragls-no-such-program serve" (cadr err))))
      (should-not (eglot-current-server))
      (kill-buffer))))

(ert-deftest ragls-test-server-crashing-at-start-is-explained ()
  (let ((ragls-server-command '("ragls" "serve" "--no-such-flag"))
        (root (ragls-test--repo "ragls-crash")))
    (when (get-buffer "*Warnings*") (kill-buffer "*Warnings*"))
    (with-current-buffer (find-file-noselect (expand-file-name "docs/deploy.md" root))
      (ignore-errors (ragls-start))
      ;; eglot's "Server died" error escapes from the process sentinel into whatever is waiting
      ;; (an editor shows it as "error in process sentinel"; a batch Emacs would exit on it).
      (let ((deadline (+ (float-time) 60)))
        (while (and (not (get-buffer "*Warnings*")) (< (float-time) deadline))
          (condition-case nil (accept-process-output nil 0.05) (error nil))))
      (let ((warnings (or (get-buffer "*Warnings*") (ert-fail "timed out waiting for a warning"))))
        (with-current-buffer warnings
          (should (string-match-p "`ragls serve --no-such-flag' exited (exit 2) before it started"
                                  (buffer-string)))
          (should (string-match-p "unrecognized arguments: --no-such-flag" (buffer-string)))))
      (should-not (eglot-managed-p))
      (kill-buffer))))

(ert-deftest ragls-test-remote-and-non-file-buffers-are-skipped ()
  (ragls-test--session)
  (with-temp-buffer
    (python-mode)
    (setq buffer-file-name "/ssh:build-host:/src/app.py")
    (let ((messages nil))
      (cl-letf (((symbol-function 'message) (lambda (fmt &rest args) (push (apply #'format fmt args) messages))))
        (ragls-ensure))
      (should (string-match-p "skipped /ssh:build-host:/src/app.py: remote (TRAMP)" (car messages))))
    (should-not eglot--managed-mode)
    (should (string-match-p "remote (TRAMP)" (cadr (should-error (ragls-start) :type 'user-error))))
    (should (string-match-p "remote (TRAMP)" (cadr (should-error (ragls-ask "hi") :type 'user-error))))
    (setq buffer-file-name nil))
  (with-temp-buffer                     ; a buffer visiting no file
    (setq default-directory "/")
    (should (string-match-p "visits no file" (cadr (should-error (ragls-start) :type 'user-error))))
    (should (string-match-p "buffer that visits a file"
                            (cadr (should-error (ragls-inline-complete) :type 'user-error))))
    (should (string-match-p "no ragls server" (cadr (should-error (ragls-search "x") :type 'user-error)))))
  (with-temp-buffer                     ; no file, but inside the project: questions work
    (setq default-directory ragls-test--repo)
    (should (cl-typep (ragls--connection) 'ragls-eglot-server))))

(ert-deftest ragls-test-huge-file-gets-no-inline-completion ()
  (with-current-buffer (ragls-test--session)
    (let ((big (expand-file-name "shop/generated_table.py" ragls-test--repo)))
      (with-temp-file big
        (dotimes (i 60000) (insert (format "ROW_%d = %d  # a generated constant, not code to read\n" i i))))
      (with-current-buffer (find-file-noselect big)
        (should (> (buffer-size) ragls-max-buffer-size))
        (ragls-test--wait #'eglot-managed-p "eglot to manage the big file")
        (should (string-match-p "ragls-max-buffer-size"
                                (cadr (should-error (ragls-inline-complete) :type 'user-error))))
        (goto-char (point-max))
        (let ((ticket ragls--inline-ticket))
          (ragls--inline-fire (current-buffer) (point) (buffer-chars-modified-tick)) ; the idle trigger
          (should (= ticket ragls--inline-ticket)))                           ; asked nothing
        (set-buffer-modified-p nil)
        (kill-buffer))
      (should (string-match-p "ready" (ragls-status))))))

(ert-deftest ragls-test-reconnects-after-the-server-dies ()
  (with-current-buffer (ragls-test--session)
    (let ((old (eglot-current-server)))
      ;; eglot reconnects only a server that lived longer than `eglot-autoreconnect' seconds
      (ragls-test--wait (lambda () (not (eglot--inhibit-autoreconnect old))) "autoreconnect to arm" 30)
      (signal-process (jsonrpc--process old) 'KILL)
      (ragls-test--wait (lambda () (let ((new (eglot-current-server)))
                                     (and new (not (eq new old)) (jsonrpc-running-p new)
                                          (eglot-managed-p))))
                        "a new server")
      (ragls-test--wait #'ragls-test--ready "the index again")
      (ragls-test--reset-calc)
      (ragls-inline-complete)
      (ragls-test--wait (lambda () ragls--inline) "a completion from the new server")
      (ragls-inline-accept)
      (should (equal (buffer-string) (concat ragls-test--typed " b"))))))

;;;; lsp-mode

(ert-deftest ragls-test-lsp-mode-registration-serves-inline-ask-and-search ()
  (unless (require 'lsp-mode nil t)
    (ert-skip "lsp-mode is not installed"))
  (should (gethash 'ragls lsp-clients))
  (let* ((root (ragls-test--repo "ragls-lsp"))
         (lsp-session-file (make-temp-file "lsp-session"))
         (lsp-auto-guess-root t)
         (lsp-enable-file-watchers nil)
         (lsp-enable-snippet nil)
         (lsp-modeline-code-actions-enable nil)
         (lsp-modeline-diagnostics-enable nil)
         (lsp-modeline-workspace-status-enable nil)
         (lsp-headerline-breadcrumb-enable nil)
         (finals (ragls-test--finals)))
    (unwind-protect
        (with-current-buffer (find-file-noselect (expand-file-name "shop/mailer.py" root))
          (cl-letf (((symbol-function 'lsp--find-clients)
                     (lambda () (list (gethash 'ragls lsp-clients))))) ; no pylsp here
            (lsp))
          (ragls-test--wait (lambda () (ignore-errors (not (ragls--eglot-p (ragls--connection)))))
                            "lsp-mode's workspace")
          (ragls-test--wait #'ragls-test--ready "the index (lsp-mode)")
          (should ragls-inline-mode)          ; ghost text with lsp-mode too
          (goto-char (point-max))
          (insert "\n" ragls-test--typed)
          (ragls-inline-complete)
          (ragls-test--wait (lambda () ragls--inline) "a completion (lsp-mode)")
          (ragls-inline-dismiss)
          (with-current-buffer (ragls-ask "SmtpMailer")
            (ragls-test--wait (lambda () (funcall finals)) "the answer (lsp-mode)")
            (should (string-match-p "Results:\n  shop/mailer.py:" (ragls-test--section "Q: SmtpMailer"))))
          (lsp-workspace-shutdown (ragls--connection)))
      (advice-remove 'ragls--insert-final 'ragls-test-finals))))

(provide 'ragls-test)
;;; ragls-test.el ends here
